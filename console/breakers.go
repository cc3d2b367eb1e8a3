package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/redact"
)

// breakerPage is the breakers' page size.
const breakerPage = 50

type breakersData struct {
	State  string
	Counts map[string]int64
	Total  int64
	Rows   []*breaker.Row
	Next   string
	First  bool
	States []string
}

func parseStateFilter(s string) ([]breaker.State, error) {
	if s == "" {
		return nil, nil
	}
	if s == "not_closed" {
		return []breaker.State{breaker.StateOpen, breaker.StateHalfOpen}, nil
	}
	st, err := breaker.ParseState(s)
	if err != nil {
		return nil, fmt.Errorf("%w: state %q is not one of closed, half_open, open, not_closed", deadletter.ErrInvalid, s)
	}
	return []breaker.State{st}, nil
}

func (c *Console) breakers(w http.ResponseWriter, r *http.Request, v *view) {
	q := r.URL.Query()
	d := &breakersData{State: q.Get("state"), First: q.Get("after") == "", States: []string{"not_closed", "open", "half_open", "closed"}}
	v.Title, v.Nav, v.Data = "Circuit breakers", "breakers", d
	states, err := parseStateFilter(d.State)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	counts, err := c.cfg.Breakers.CountByState(ctx)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	d.Counts = map[string]int64{}
	for st, n := range counts {
		d.Counts[st.String()] = n
		d.Total += n
	}
	rows, next, err := c.cfg.Breakers.Page(ctx, breaker.PageParams{States: states, After: q.Get("after"), Limit: breakerPage})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	for _, row := range rows {
		row.LastError = redact.Text(row.LastError)
		row.ChangeReason = redact.Text(row.ChangeReason)
	}
	d.Rows, d.Next = rows, next
	c.render(w, r, http.StatusOK, "breakers", v)
}

type confirmData struct {
	Action string // "reset" or "open"
	Row    *breaker.Row
	For    string
	Fors   []string
}

// holdChoices are the maintenance durations the open form offers.
var holdChoices = []string{"10m", "30m", "1h", "4h", "24h"}

func (c *Console) breakerConfirm(w http.ResponseWriter, r *http.Request, v *view) {
	v.Nav = "breakers"
	q := r.URL.Query()
	action, key := q.Get("action"), q.Get("key")
	if action != "reset" && action != "open" {
		c.fail(w, r, v, http.StatusBadRequest, fmt.Sprintf("action %q is not reset or open.", action))
		return
	}
	if err := breaker.ValidateKey(key); err != nil {
		c.failErr(w, r, v, err)
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	row, err := c.cfg.Breakers.Get(ctx, key)
	if errors.Is(err, breaker.ErrNotFound) && action == "open" {
		row, err = &breaker.Row{Key: key}, nil
	}
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	row.LastError = redact.Text(row.LastError)
	v.Title = "Reset breaker?"
	if action == "open" {
		v.Title = "Open breaker for maintenance?"
	}
	v.Data = &confirmData{Action: action, Row: row, For: "30m", Fors: holdChoices}
	c.render(w, r, http.StatusOK, "breaker_confirm", v)
}

func reason(r *http.Request) (string, error) {
	s := strings.TrimSpace(r.PostForm.Get("reason"))
	if err := breaker.ValidateText("reason", s); err != nil {
		return "", fmt.Errorf("%w: %v", deadletter.ErrInvalid, err)
	}
	return s, nil
}

func (c *Console) breakerReset(w http.ResponseWriter, r *http.Request, v *view) {
	v.Nav = "breakers"
	key := r.PostForm.Get("key")
	why, err := reason(r)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	if why == "" {
		why = "reset in the console"
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	row, err := c.cfg.Breakers.Reset(ctx, breaker.ResetParams{Key: key, By: Actor, Reason: why})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	c.log.Info("console: breaker reset", "key", key)
	v.Title = "Breaker reset"
	v.Data = &resultData{Heading: v.Title, Back: Prefix + "/breakers", BackTo: "the breakers",
		Lines: []resultLine{{Text: fmt.Sprintf("Breaker %q is %s (generation %d).", row.Key, row.State, row.Generation)}}}
	c.render(w, r, http.StatusOK, "result", v)
}

func (c *Console) breakerOpen(w http.ResponseWriter, r *http.Request, v *view) {
	v.Nav = "breakers"
	key := r.PostForm.Get("key")
	why, err := reason(r)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	if why == "" {
		why = "maintenance (console)"
	}
	d, err := deadletter.ParseAge(r.PostForm.Get("for"))
	if err != nil || d > breaker.MaxHold {
		c.fail(w, r, v, http.StatusBadRequest, fmt.Sprintf("for: %q is not a duration between 1s and %s. Nothing was changed.", r.PostForm.Get("for"), breaker.MaxHold))
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	row, err := c.cfg.Breakers.Open(ctx, breaker.OpenParams{Key: key, For: d, By: Actor, Reason: why})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	c.log.Info("console: breaker opened for maintenance", "key", key, "for", d.String())
	v.Title = "Breaker opened"
	next := ""
	if row.NextProbeAt != nil {
		next = row.NextProbeAt.UTC().Format(time.RFC3339)
	}
	v.Data = &resultData{Heading: v.Title, Back: Prefix + "/breakers", BackTo: "the breakers",
		Lines: []resultLine{{Text: fmt.Sprintf("Breaker %q is open until %s.", row.Key, next)}}}
	c.render(w, r, http.StatusOK, "result", v)
}
