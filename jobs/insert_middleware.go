package jobs

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// InsertMiddleware is a River job insert middleware that stamps every
// inserted job's operation key into its metadata (under
// [MetadataOperationKey]), where the dead-letter capture trigger and
// operators' SQL can read it without knowing the kind's args. A key already
// present in the metadata is kept; otherwise the args' own
// ([OperationKeyer]) is used, else the registry's rule
// ([Registry.OperationKey]). Install it in river.Config.Middleware of
// every client that inserts jobs. Build it with [Registry.InsertMiddleware].
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
	for _, p := range manyParams {
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
		metadata := p.Metadata
		if len(metadata) == 0 {
			metadata = []byte("{}")
		}
		stamped, err := sjson.SetBytes(metadata, MetadataOperationKey, key)
		if err != nil {
			return nil, fmt.Errorf("stamp operation key into metadata of %s job: %w", p.Kind, err)
		}
		p.Metadata = stamped
	}
	return doInner(ctx)
}
