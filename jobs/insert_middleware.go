package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/rebound-queue/rebound/storable"
)

// InsertMiddleware is a River job insert middleware that stamps every
// inserted job's operation key into its metadata (under
// [MetadataOperationKey]), where the dead-letter capture trigger and
// operators' SQL can read it without knowing the kind's args. A key already
// present in the metadata is kept; otherwise the args' own
// ([OperationKeyer]) is used, else the registry's rule
// ([Registry.OperationKey]). Install it in river.Config.Middleware of
// every client that inserts jobs. Build it with [Registry.InsertMiddleware].
//
// It also refuses, before anything is written, a batch in which a job's
// args or metadata hold a string PostgreSQL's jsonb cannot store — a NUL,
// invalid UTF-8 (in a Go string of the args value, which json.Marshal would
// silently turn into U+FFFD, or in a json.RawMessage, which it passes
// through), an unpaired surrogate escape: the whole insert fails with an
// error wrapping a *storable.JSONError (and [ErrInvalidArgs] for args) that
// names the job and the field, e.g.
//
//	insert http_request job 3 of 5: invalid args: args.body.name: contains a NUL character (\u0000), which PostgreSQL cannot store
//
// instead of PostgreSQL's "unsupported Unicode escape sequence".
type InsertMiddleware struct {
	river.MiddlewareDefaults
	registry *Registry
}

// InsertMiddleware returns the insert middleware for r's kinds.
func (r *Registry) InsertMiddleware() *InsertMiddleware {
	return &InsertMiddleware{registry: r}
}

// InsertMany implements rivertype.JobInsertMiddleware.
func (m *InsertMiddleware) InsertMany(ctx context.Context, manyParams []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	for i, p := range manyParams {
		if err := CheckStorableInsert(p); err != nil {
			if len(manyParams) > 1 {
				return nil, fmt.Errorf("insert %s job %d of %d: %w", p.Kind, i+1, len(manyParams), err)
			}
			return nil, fmt.Errorf("insert %s job: %w", p.Kind, err)
		}
		if gjson.GetBytes(p.Metadata, MetadataOperationKey).Exists() {
			continue
		}
		key := ""
		if k, ok := p.Args.(OperationKeyer); ok {
			key = NormalizeOperationKey(k.OperationKey())
		}
		if key == "" {
			key = m.registry.OperationKey(p.Kind, p.EncodedArgs, nil)
		}
		stamped, err := stampOperationKey(p.Metadata, key)
		if err != nil {
			return nil, fmt.Errorf("stamp operation key into metadata of %s job: %w", p.Kind, err)
		}
		p.Metadata = stamped
	}
	return doInner(ctx)
}

// CheckStorableInsert refuses a job about to be inserted whose args or
// metadata PostgreSQL cannot store, with an error wrapping a
// *storable.JSONError (and [ErrInvalidArgs] for args) that names the field.
// The args value is looked at too: json.Marshal has already replaced
// invalid UTF-8 in its strings with U+FFFD, so the encoding alone would not
// show it. Every insert middleware of rebound's runs it.
func CheckStorableInsert(p *rivertype.JobInsertParams) error {
	if err := storable.CheckValue(p.Args, "args"); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgs, err)
	}
	if err := CheckStorableArgs(p.EncodedArgs); err != nil {
		return err
	}
	if err := storable.CheckJSON(p.Metadata, "metadata"); err != nil {
		return fmt.Errorf("invalid metadata: %w", err)
	}
	return nil
}

// stampOperationKey returns metadata (none is {}) with key stored under
// [MetadataOperationKey], as sjson.SetBytes stores it. The usual metadata,
// none or {}, is built directly: {"operation_key":"KEY"}, KEY quoted as
// sjson quotes it (as it is when plain printable ASCII, else by
// encoding/json), which costs a fifth of sjson's parse-and-splice.
func stampOperationKey(metadata []byte, key string) ([]byte, error) {
	if len(metadata) != 0 && string(metadata) != "{}" {
		return sjson.SetBytes(metadata, MetadataOperationKey, key)
	}
	const head = `{"` + MetadataOperationKey + `":`
	b := make([]byte, 0, len(head)+len(key)+3)
	b = append(b, head...)
	if plainJSONString(key) {
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, '"')
	} else {
		q, err := json.Marshal(key)
		if err != nil {
			return nil, err
		}
		b = append(b, q...)
	}
	return append(b, '}'), nil
}

// plainJSONString reports whether s is printable ASCII without a quote or a
// backslash: JSON-quoted as it is.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
