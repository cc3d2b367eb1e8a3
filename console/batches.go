package console

import (
	"errors"
	"net/http"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/deadletter"
)

type batchesData struct {
	Open    bool
	Batches []*batch.Summary
}

func (c *Console) batches(w http.ResponseWriter, r *http.Request, v *view) {
	d := &batchesData{Open: r.URL.Query().Get("open") == "1"}
	v.Title, v.Nav, v.Data = "Batches", "batches", d
	ctx, cancel := pageContext(r)
	defer cancel()
	list, err := batch.List(ctx, c.cfg.Pool, batch.ListOpts{Limit: 100, Open: d.Open})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	d.Batches = list
	c.render(w, r, http.StatusOK, "batches", v)
}

func (c *Console) batchShow(w http.ResponseWriter, r *http.Request, v *view) {
	v.Nav = "batches"
	id, err := batch.ParseID(r.PathValue("id"))
	if err != nil {
		c.failErr(w, r, v, wrapInvalid(err))
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	s, err := batch.GetSummary(ctx, c.cfg.Pool, id)
	if err != nil {
		if isBatchNotFound(err) {
			c.fail(w, r, v, http.StatusNotFound, err.Error()+".")
			return
		}
		c.failErr(w, r, v, err)
		return
	}
	v.Title, v.Data = "Batch "+s.Name, s
	c.render(w, r, http.StatusOK, "batch", v)
}

func wrapInvalid(err error) error { return &invalidErr{err} }

type invalidErr struct{ err error }

func (e *invalidErr) Error() string   { return e.err.Error() }
func (e *invalidErr) Unwrap() []error { return []error{e.err, deadletter.ErrInvalid} }
func isBatchNotFound(err error) bool  { return errors.Is(err, batch.ErrNotFound) }
