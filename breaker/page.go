package breaker

import (
	"context"
	"fmt"
)

// DefaultPageLimit is the page size of Store.Page when PageParams.Limit is
// 0; MaxPageLimit is the largest.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 1000
)

// PageParams selects one page of rows for Store.Page.
type PageParams struct {
	// States selects rows in any of these states; empty means every state.
	States []State
	// After is the last key of the previous page (Page's next); "" for the
	// first page.
	After string
	// Limit is the page size: 0 means DefaultPageLimit, at most
	// MaxPageLimit.
	Limit int
}

// Page returns one page of rows ordered by key, and the key to pass as
// PageParams.After for the next page ("" when this page is the last). Pages
// are keyed by breaker_key (the primary key), so a page costs the same at
// any number of keys: no count, no offset. Errors name a bad limit, or a
// cursor that cannot be a key (ValidateKey's rule: NUL, invalid UTF-8...;
// the error matches ErrInvalidKey), or come from the database.
func (s *Store) Page(ctx context.Context, p PageParams) ([]*Row, string, error) {
	limit := p.Limit
	if limit == 0 {
		limit = DefaultPageLimit
	}
	if limit < 1 || limit > MaxPageLimit {
		return nil, "", fmt.Errorf("breaker page: limit %d is not between 1 and %d", p.Limit, MaxPageLimit)
	}
	if p.After != "" {
		if err := ValidateKey(p.After); err != nil {
			return nil, "", fmt.Errorf("breaker page: cursor: %w", err)
		}
	}
	states := make([]string, 0, len(p.States))
	for _, st := range p.States {
		states = append(states, st.String())
	}
	rows, err := s.query(ctx, `SELECT `+columns+` FROM circuit_breaker_state
		WHERE breaker_key > $1 AND (cardinality($2::text[]) = 0 OR state = ANY($2::text[]))
		ORDER BY breaker_key LIMIT $3`, p.After, states, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("breaker page: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[limit-1].Key
	}
	return rows, next, nil
}

// CountByState counts the rows in each state (states without rows are
// absent).
func (s *Store) CountByState(ctx context.Context) (map[State]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT state, count(*) FROM circuit_breaker_state GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("breaker counts: %w", err)
	}
	defer rows.Close()
	out := map[State]int64{}
	for rows.Next() {
		var (
			st string
			n  int64
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("breaker counts: %w", err)
		}
		state, err := ParseState(st)
		if err != nil {
			return nil, err
		}
		out[state] = n
	}
	return out, rows.Err()
}
