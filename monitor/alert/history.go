package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rebound-queue/rebound/monitor/notify"
)

// Event is one job_alert_history row.
type Event struct {
	ID        int64                      `json:"id"`
	Rule      string                     `json:"rule"`
	Subject   string                     `json:"subject"`
	Event     string                     `json:"event"`
	Severity  Severity                   `json:"severity"`
	Value     float64                    `json:"value"`
	Threshold float64                    `json:"threshold"`
	Message   string                     `json:"message"`
	Channels  []string                   `json:"channels"`
	Delivery  map[string]notify.Delivery `json:"delivery"`
	Since     time.Time                  `json:"firing_since"`
	CreatedAt time.Time                  `json:"created_at"`
}

// History reads and updates job_alert_history.
type History struct{ db DBTX }

// NewHistory returns the history store on db.
func NewHistory(db DBTX) *History { return &History{db: db} }

const eventColumns = `id, rule, subject, event, severity, value, threshold, message, channels, delivery, firing_since, created_at`

func scanEvent(row pgx.Row) (Event, error) {
	var e Event
	var sev string
	var delivery []byte
	err := row.Scan(&e.ID, &e.Rule, &e.Subject, &e.Event, &sev, &e.Value, &e.Threshold, &e.Message, &e.Channels, &delivery, &e.Since, &e.CreatedAt)
	if err != nil {
		return e, err
	}
	e.Severity = Severity(sev)
	if err := json.Unmarshal(delivery, &e.Delivery); err != nil {
		return e, err
	}
	return e, nil
}

// List returns the latest events, newest first: at most limit (1 to
// 1000), of rule only when rule is not "" (none for a name no rule can
// have, such as one that is not valid UTF-8).
func (h *History) List(ctx context.Context, rule string, limit int) ([]Event, error) {
	if limit < 1 || limit > 1000 {
		return nil, fmt.Errorf("limit %d: from 1 to 1000", limit)
	}
	if rule != "" && !ruleNameRE.MatchString(rule) {
		return []Event{}, nil
	}
	rows, err := h.db.Query(ctx, `SELECT `+eventColumns+` FROM job_alert_history WHERE $1 = '' OR rule = $1 ORDER BY id DESC LIMIT $2`, rule, limit)
	if err != nil {
		return nil, fmt.Errorf("read alert history: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("read alert history: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ErrNoEvent is returned for a history ID that is not there; it is
// notify.ErrNoMessage, so a delivery of a removed row ends without retry.
var ErrNoEvent = notify.ErrNoMessage

// Message builds the notification of history row id (for notify.Worker's
// Load); link is put in it.
func (h *History) Message(ctx context.Context, id int64, link string) (*notify.Message, error) {
	e, err := scanEvent(h.db.QueryRow(ctx, `SELECT `+eventColumns+` FROM job_alert_history WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrNoEvent, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read alert history %d: %w", id, err)
	}
	m := &notify.Message{Status: "firing", Event: e.Event, Rule: e.Rule, Subject: e.Subject, Severity: string(e.Severity),
		Value: e.Value, Threshold: e.Threshold, Summary: e.Message, StartsAt: e.Since, Link: link}
	if e.Event == EventResolved {
		m.Status, m.EndsAt = "resolved", e.CreatedAt
	}
	return m, nil
}

// RecordDelivery stores a channel's outcome on row id (for notify.Worker's
// Record). Called within InOrder's attempt, it writes in InOrder's
// transaction (one connection per delivery, committed with the lock's
// release).
func (h *History) RecordDelivery(ctx context.Context, id int64, channel string, d notify.Delivery) error {
	b, err := json.Marshal(map[string]notify.Delivery{channel: d})
	if err != nil {
		return err
	}
	var db DBTX = h.db
	if tx, ok := ctx.Value(inOrderTx{}).(pgx.Tx); ok {
		db = tx // inside InOrder's attempt: in its transaction
	}
	// A string, not []byte: in the exec and simple_protocol modes pgx
	// sends []byte as bytea text, which jsonb cannot read.
	_, err = db.Exec(ctx, `UPDATE job_alert_history SET delivery = delivery || $2::jsonb WHERE id = $1::bigint`, id, string(b))
	return err
}

// inOrderTx is the context key under which InOrder hands its transaction
// to the RecordDelivery its attempt calls.
type inOrderTx struct{}

// RecordTest inserts a test event for `rebound alerts test` and returns
// its ID.
func (h *History) RecordTest(ctx context.Context, channel string, now time.Time) (int64, error) {
	var id int64
	err := h.db.QueryRow(ctx, `INSERT INTO job_alert_history (rule, subject, event, severity, value, threshold, message, channels, firing_since, created_at)
		VALUES ('test', $1, 'test', 'warning', 0, 0, 'a test notification from rebound alerts test: the channel works', ARRAY[$1], $2, $2) RETURNING id`,
		channel, now).Scan(&id)
	return id, err
}

// InOrder runs attempt, one delivery attempt of history row id through
// channel (the send and the record of its outcome), and returns its error,
// unless a newer event of the row's (rule, subject) that lists channel
// already has a final outcome there (delivered, failed, skipped or
// superseded: a resolved notice or a repeat written and settled after it;
// test events take no part). Then it returns superseded true without
// calling attempt, so the receiver never gets an older event after a
// newer one. A newer event still pending does not stop it: the older one
// goes first and the newer follows. InOrder holds a transaction-level
// PostgreSQL advisory lock on (rule, subject, channel) from that check
// until attempt's outcome is committed, so two deliveries of one (rule,
// subject) through one channel never overlap, on any pod. The transaction
// holds one database connection for the attempt's length (bounded by the
// send's timeouts); RecordDelivery called with attempt's context writes in
// it. err is attempt's error, or the database's (wrapped); a row that no
// longer exists is ErrNoEvent. For notify.Worker's InOrder.
func (h *History) InOrder(ctx context.Context, id int64, channel string, attempt func(context.Context) error) (superseded bool, err error) {
	tx, err := h.db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("alert history %d: %w", id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var rule, subject, event string
	err = tx.QueryRow(ctx, `SELECT rule, subject, event FROM job_alert_history WHERE id = $1`, id).Scan(&rule, &subject, &event)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("%w: %d", ErrNoEvent, id)
	}
	if err != nil {
		return false, fmt.Errorf("read alert history %d: %w", id, err)
	}
	if event != EventTest {
		// The lock's key: a 64-bit hash of (rule, subject, channel); a
		// collision only serialises two unrelated deliveries.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('rebound_notify' || chr(31) || $1 || chr(31) || $2 || chr(31) || $3, 0))`,
			rule, subject, channel); err != nil {
			return false, fmt.Errorf("alert history %d: lock (rule, subject, channel): %w", id, err)
		}
		var newer bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM job_alert_history WHERE rule = $1 AND subject = $2 AND id > $3
			AND event <> 'test' AND $4 = ANY(channels) AND delivery -> $4 ->> 'outcome' IN ('delivered', 'failed', 'skipped', 'superseded'))`,
			rule, subject, id, channel).Scan(&newer); err != nil {
			return false, fmt.Errorf("alert history %d: look for a newer event: %w", id, err)
		}
		if newer {
			return true, nil
		}
	}
	// attempt records its outcome (RecordDelivery) in tx, committed as the
	// lock is released: the next delivery of the pair sees it. A commit
	// that fails after a successful send is returned: the delivery is
	// retried (at least once, never lost).
	attemptErr := attempt(context.WithValue(ctx, inOrderTx{}, tx))
	if err := tx.Commit(context.WithoutCancel(ctx)); err != nil && attemptErr == nil {
		return false, fmt.Errorf("alert history %d: record the delivery: %w", id, err)
	}
	return false, attemptErr
}
