// Package listencheck finds out whether LISTEN/NOTIFY works on a
// connection: behind PgBouncer in transaction mode a LISTEN is accepted
// and then silently lost (the server connection it ran on goes back to the
// pooler's pool), so a pod that relies on it starts without complaint and
// never hears a notification. A round trip (LISTEN on a connection of its
// own, NOTIFY through the pool, wait) tells.
package listencheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultTimeout is how long [RoundTrip] waits for its notification when
// given 0: on a direct connection it arrives within milliseconds.
const DefaultTimeout = 5 * time.Second

// ErrLost is returned (wrapped) by [RoundTrip] when the notification did not
// arrive in time: LISTEN does not work on that connection.
var ErrLost = errors.New("a NOTIFY to this connection's own LISTEN did not arrive")

// RoundTrip opens a connection of its own with listen (not from a pool: it
// is closed afterwards, so no LISTEN is left behind), LISTENs on a channel
// named rebound_listen_check_<random>, sends a NOTIFY on it through
// notifier, and waits up to timeout (0 means [DefaultTimeout]) for the
// notification. It returns nil when the notification arrived, an error
// wrapping [ErrLost] when it did not (LISTEN does not work on listen's
// connections: a pooler in transaction mode), and any other error when the
// database could not be reached or refused a statement.
func RoundTrip(ctx context.Context, listen *pgx.ConnConfig, notifier *pgxpool.Pool, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, listen.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	channel := "rebound_listen_check_" + hex.EncodeToString(b)
	// The simple protocol, whatever the connection's exec mode: no
	// prepared statement is left on a pooler's server connection.
	if _, err := conn.PgConn().Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()).ReadAll(); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if _, err := notifier.Exec(ctx, "SELECT pg_notify($1::text, 'check')", channel); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err = conn.WaitForNotification(waitCtx)
	switch {
	case err != nil && ctx.Err() == nil && waitCtx.Err() != nil:
		return fmt.Errorf("%w within %s", ErrLost, timeout)
	case err != nil:
		return fmt.Errorf("wait for the notification: %w", err)
	}
	return nil
}
