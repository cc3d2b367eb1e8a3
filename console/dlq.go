package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// listLimit is the DLQ page size.
const listLimit = 50

// dlqForm is the DLQ filter as the form and the links carry it.
type dlqForm struct {
	Kind, Class, Key, Status, Since, Until string
}

func formFrom(get func(string) string) dlqForm {
	return dlqForm{
		Kind: strings.TrimSpace(get("kind")), Class: get("class"), Key: strings.TrimSpace(get("key")),
		Status: get("status"), Since: strings.TrimSpace(get("since")), Until: strings.TrimSpace(get("until")),
	}
}

// Query is the filter as a query string (no cursor), already escaped for
// an href.
func (f dlqForm) Query() template.URL {
	q := url.Values{}
	for k, v := range map[string]string{"kind": f.Kind, "class": f.Class, "key": f.Key, "status": f.Status, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return template.URL(q.Encode()) //nolint:gosec // url.Values.Encode escapes every value
}

// Empty reports a filter that selects everything.
func (f dlqForm) Empty() bool { return f == dlqForm{} }

// filter turns the form into a deadletter.Filter and validates it; errors
// wrap deadletter.ErrInvalid and name the field.
func (f dlqForm) filter(now time.Time) (deadletter.Filter, error) {
	var flt deadletter.Filter
	if f.Kind != "" {
		flt.Kinds = []string{f.Kind}
	}
	if f.Class != "" {
		flt.Classes = []string{f.Class}
	}
	if f.Key != "" {
		flt.OperationKeys = []string{f.Key}
	}
	if f.Status != "" {
		flt.Statuses = []deadletter.Status{deadletter.Status(f.Status)}
	}
	if f.Since != "" {
		t, err := deadletter.ParseSince(f.Since, now)
		if err != nil {
			return flt, fmt.Errorf("%w: since: %v", deadletter.ErrInvalid, err)
		}
		flt.Since = t
	}
	if f.Until != "" {
		t, err := deadletter.ParseSince(f.Until, now)
		if err != nil {
			return flt, fmt.Errorf("%w: until: %v", deadletter.ErrInvalid, err)
		}
		flt.Until = t
	}
	return flt, flt.Validate()
}

type dlqListData struct {
	Form     dlqForm
	Entries  []*deadletter.Entry
	Next     string
	First    bool
	Classes  []string
	Statuses []deadletter.Status
}

func classNames() []string {
	var out []string
	for _, c := range retrypolicy.Classes() {
		out = append(out, string(c))
	}
	return out
}

func (c *Console) dlqList(w http.ResponseWriter, r *http.Request, v *view) {
	q := r.URL.Query()
	form := formFrom(q.Get)
	d := &dlqListData{Form: form, Classes: classNames(), Statuses: deadletter.Statuses, First: q.Get("after") == ""}
	v.Title, v.Nav, v.Data = "Dead letters", "dlq", d
	flt, err := form.filter(time.Now())
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	res, err := c.cfg.DLQ.List(ctx, deadletter.ListParams{Filter: flt, After: q.Get("after"), Limit: listLimit})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	for i, e := range res.Entries {
		res.Entries[i] = deadletter.Redact(e)
	}
	d.Entries, d.Next = res.Entries, res.NextCursor
	c.render(w, r, http.StatusOK, "dlq", v)
}

type dlqEntryData struct {
	Entry    *deadletter.Entry
	Args     string
	Metadata string
}

func entryID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("%w: entry ID %q is not a positive integer", deadletter.ErrInvalid, r.PathValue("id"))
	}
	return id, nil
}

// dlqEntryPage starts the page of one dead letter or of an action on it:
// the DLQ tab, and the entry ID from the path. When ok is false the ID was
// not a positive integer and the 400 page has been shown.
func (c *Console) dlqEntryPage(w http.ResponseWriter, r *http.Request, v *view) (id int64, ok bool) {
	v.Nav = "dlq"
	id, err := entryID(r)
	if err != nil {
		c.failErr(w, r, v, err)
		return 0, false
	}
	return id, true
}

func indentJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

func (c *Console) dlqEntry(w http.ResponseWriter, r *http.Request, v *view) {
	id, ok := c.dlqEntryPage(w, r, v)
	if !ok {
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	e, err := c.cfg.DLQ.Get(ctx, id)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	e = deadletter.Redact(e)
	v.Title = fmt.Sprintf("Dead letter %d", id)
	v.Data = &dlqEntryData{Entry: e, Args: indentJSON(e.Args), Metadata: indentJSON(e.Metadata)}
	c.render(w, r, http.StatusOK, "dlq_entry", v)
}

// resultData is what an action page shows.
type resultData struct {
	Heading string
	Lines   []resultLine
	Back    string
	BackTo  string
}

type resultLine struct {
	Text     string
	Href     string
	LinkText string
}

func (c *Console) dlqRetryOne(w http.ResponseWriter, r *http.Request, v *view) {
	id, ok := c.dlqEntryPage(w, r, v)
	if !ok {
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	res, err := c.cfg.DLQ.Retry(ctx, deadletter.RetryParams{ID: id, Force: r.PostForm.Get("force") == "1", By: Actor})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	c.log.Info("console: dead letter retried", "entry_id", id, "new_job_id", res.NewJobID)
	v.Title = fmt.Sprintf("Dead letter %d retried", id)
	v.Data = &resultData{Heading: v.Title, Back: fmt.Sprintf("%s/dlq/%d", Prefix, id), BackTo: fmt.Sprintf("dead letter %d", id),
		Lines: []resultLine{{Text: fmt.Sprintf("Entry %d (%s) was retried as new job %d.", id, res.Kind, res.NewJobID),
			Href: fmt.Sprintf("/riverui/jobs/%d", res.NewJobID), LinkText: fmt.Sprintf("Job %d in the River UI", res.NewJobID)}}}
	c.render(w, r, http.StatusOK, "result", v)
}

// note reads and checks a resolution note: required, breaker.ValidateText's
// rule (at most 1,024 bytes of UTF-8, no NUL).
func note(r *http.Request) (string, error) {
	n := strings.TrimSpace(r.PostForm.Get("note"))
	if n == "" {
		return "", fmt.Errorf("%w: a note is required: say what was found and what was done", deadletter.ErrInvalid)
	}
	if err := breaker.ValidateText("note", n); err != nil {
		return "", fmt.Errorf("%w: %v", deadletter.ErrInvalid, err)
	}
	return n, nil
}

func (c *Console) dlqResolveOne(w http.ResponseWriter, r *http.Request, v *view) {
	id, ok := c.dlqEntryPage(w, r, v)
	if !ok {
		return
	}
	n, err := note(r)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	if _, err := c.cfg.DLQ.Resolve(ctx, deadletter.ResolveParams{ID: id, Note: n, By: Actor}); err != nil {
		c.failErr(w, r, v, err)
		return
	}
	c.log.Info("console: dead letter resolved", "entry_id", id)
	v.Title = fmt.Sprintf("Dead letter %d resolved", id)
	v.Data = &resultData{Heading: v.Title, Back: fmt.Sprintf("%s/dlq/%d", Prefix, id), BackTo: fmt.Sprintf("dead letter %d", id),
		Lines: []resultLine{{Text: fmt.Sprintf("Entry %d is resolved with the note: %s", id, n)}}}
	c.render(w, r, http.StatusOK, "result", v)
}

// previewData is the confirmation page of a bulk action.
type previewData struct {
	Action string // "retry" or "resolve"
	Form   dlqForm
	Count  int
	Note   string
}

// dlqBulkPage starts the page of an action on many dead letters: the DLQ
// tab, and the filter of the posted form. When ok is false the filter was
// invalid and the 400 page has been shown.
func (c *Console) dlqBulkPage(w http.ResponseWriter, r *http.Request, v *view) (dlqForm, deadletter.Filter, bool) {
	v.Nav = "dlq"
	form := formFrom(r.PostForm.Get)
	flt, err := form.filter(time.Now())
	if err != nil {
		c.failErr(w, r, v, err)
		return form, flt, false
	}
	return form, flt, true
}

func (c *Console) dlqRetryMany(w http.ResponseWriter, r *http.Request, v *view) {
	form, flt, ok := c.dlqBulkPage(w, r, v)
	if !ok {
		return
	}
	confirm := r.PostForm.Get("confirm") == "1"
	ctx, cancel := pageContext(r)
	defer cancel()
	res, err := c.cfg.DLQ.RetryMany(ctx, deadletter.RetryManyParams{Filter: flt, DryRun: !confirm, By: Actor})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	if !confirm {
		v.Title = "Retry dead letters?"
		v.Data = &previewData{Action: "retry", Form: form, Count: len(res.Retried)}
		c.render(w, r, http.StatusOK, "preview", v)
		return
	}
	c.log.Info("console: dead letters retried", "count", len(res.Retried), "skipped", len(res.Skipped))
	d := &resultData{Heading: fmt.Sprintf("%d dead letters retried", len(res.Retried)), Back: Prefix + "/dlq?" + string(form.Query()), BackTo: "the dead letters"}
	for i, rr := range res.Retried {
		if i == 100 {
			d.Lines = append(d.Lines, resultLine{Text: fmt.Sprintf("… and %d more.", len(res.Retried)-100)})
			break
		}
		d.Lines = append(d.Lines, resultLine{Text: fmt.Sprintf("Entry %d (%s) → new job %d.", rr.EntryID, rr.Kind, rr.NewJobID),
			Href: fmt.Sprintf("/riverui/jobs/%d", rr.NewJobID), LinkText: fmt.Sprintf("Job %d", rr.NewJobID)})
	}
	for _, s := range res.Skipped {
		d.Lines = append(d.Lines, resultLine{Text: fmt.Sprintf("Entry %d skipped: %s.", s.EntryID, s.Reason)})
	}
	v.Title, v.Data = d.Heading, d
	c.render(w, r, http.StatusOK, "result", v)
}

func (c *Console) dlqResolveMany(w http.ResponseWriter, r *http.Request, v *view) {
	form, flt, ok := c.dlqBulkPage(w, r, v)
	if !ok {
		return
	}
	n, err := note(r)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	confirm := r.PostForm.Get("confirm") == "1"
	ctx, cancel := pageContext(r)
	defer cancel()
	res, err := c.cfg.DLQ.ResolveMany(ctx, deadletter.ResolveManyParams{Filter: flt, Note: n, DryRun: !confirm, By: Actor})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	if !confirm {
		v.Title = "Resolve dead letters?"
		v.Data = &previewData{Action: "resolve", Form: form, Count: len(res.IDs), Note: n}
		c.render(w, r, http.StatusOK, "preview", v)
		return
	}
	c.log.Info("console: dead letters resolved", "count", len(res.IDs))
	d := &resultData{Heading: fmt.Sprintf("%d dead letters resolved", len(res.IDs)), Back: Prefix + "/dlq?" + string(form.Query()), BackTo: "the dead letters",
		Lines: []resultLine{{Text: "Note: " + n}}}
	v.Title, v.Data = d.Heading, d
	c.render(w, r, http.StatusOK, "result", v)
}
