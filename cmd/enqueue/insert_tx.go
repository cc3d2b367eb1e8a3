package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// commitError is an insert transaction's failed COMMIT: everything before
// it had succeeded.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// insertTx runs fn in a transaction on pool, as pgx.BeginFunc does (fn's
// error rolls it back), and tells a failed COMMIT apart as a *commitError.
func insertTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	committing := false
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		committing = true
		return nil
	})
	if err != nil && committing {
		return &commitError{err: err}
	}
	return err
}

// insertFailed is enqueue's message for a failed insert transaction: the
// error and "(nothing inserted)", unless the COMMIT itself was lost on
// the way (the connection failed after sending it and before the server's
// answer). Then nobody can say whether the jobs went in, and the message
// says so rather than claim nothing was inserted. A COMMIT the server
// answered with an error, or one never sent, inserted nothing.
func insertFailed(err error) error {
	if ce, ok := errors.AsType[*commitError](err); ok {
		_, answered := errors.AsType[*pgconn.PgError](ce.err)
		if !answered && !pgconn.SafeToRetry(ce.err) {
			return fmt.Errorf("%w (the connection failed during the commit, so whether the jobs were inserted is unknown: look in river_job before enqueueing them again)", err)
		}
	}
	return fmt.Errorf("%w (nothing inserted)", err)
}
