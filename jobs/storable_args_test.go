package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/storable"
)

type plainArgs struct {
	Name string `json:"name"`
}

func (plainArgs) Kind() string { return "plain" }

// Args PostgreSQL cannot store are refused by every registered kind's
// Parse, naming the field, before the kind decodes them (encoding/json
// would turn invalid UTF-8 into U+FFFD and hide it).
func TestParseRefusesUnstorableArgs(t *testing.T) {
	t.Parallel()
	reg := jobs.Builtin()
	reg.Register(jobs.Kind{Name: "plain", Parse: func(raw []byte) (river.JobArgs, error) {
		var a plainArgs
		return a, json.Unmarshal(raw, &a) // no check of its own
	}})
	tests := []struct {
		name, kind, raw, wantErr string
	}{
		{"NUL in the body", "http_request", `{"url": "http://h/", "body": {"name": "a\u0000b"}}`,
			`invalid args: args.body.name: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"NUL in a header name", "http_request", `{"url": "http://h/", "headers": {"X-\u0000": "1"}}`,
			`invalid args: args.headers: the key "X-\x00" contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"invalid UTF-8 in the url", "http_request", "{\"url\": \"http://h/\xff\"}",
			`invalid args: args.url: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"invalid UTF-8 in an operation key", "http_request", "{\"url\": \"http://h/\", \"operation_key\": \"k\xfe\"}",
			`invalid args: args.operation_key: contains invalid UTF-8 (byte 0xfe), which PostgreSQL cannot store`},
		{"unpaired surrogate", "http_request", `{"url": "http://h/", "body": ["\ud800"]}`,
			`invalid args: args.body[0]: contains an unpaired UTF-16 surrogate (\ud800), which PostgreSQL cannot store`},
		{"any registered kind", "plain", `{"name": "\u0000"}`,
			`invalid args: args.name: contains a NUL character (\u0000), which PostgreSQL cannot store`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args, err := reg.Parse(tt.kind, []byte(tt.raw))
			require.Nil(t, args)
			require.ErrorIs(t, err, jobs.ErrInvalidArgs)
			require.EqualError(t, err, tt.wantErr)
			kind, err := reg.Lookup(tt.kind)
			require.NoError(t, err)
			_, err = kind.Parse([]byte(tt.raw))
			require.EqualError(t, err, tt.wantErr)
		})
	}
	args, err := reg.Parse("plain", []byte(`{"name": "é\t\u0001"}`))
	require.NoError(t, err)
	require.Equal(t, plainArgs{Name: "é\t\x01"}, args)
}

// A Go program inserting through a client with the insert middleware gets
// one clear error naming the job and the field, and nothing is inserted;
// without it, PostgreSQL would refuse a NUL with its own words and store
// invalid UTF-8 of a Go string as U+FFFD.
func TestInsertMiddlewareRefusesUnstorableArgs(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Middleware: []rivertype.Middleware{jobs.Builtin().InsertMiddleware()},
	})
	require.NoError(t, err)
	good := jobs.HTTPRequestArgs{URL: "http://127.0.0.1:9/hook"}
	tests := []struct {
		name     string
		args     jobs.HTTPRequestArgs
		metadata string
		wantErr  string
	}{
		{"NUL in a header value", jobs.HTTPRequestArgs{URL: good.URL, Headers: map[string]string{"X-A": "a\x00"}}, "",
			`args.headers["X-A"]: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"invalid UTF-8 in a Go string", jobs.HTTPRequestArgs{URL: good.URL + "\xff"}, "",
			`args.url: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"invalid UTF-8 in a raw body", jobs.HTTPRequestArgs{URL: good.URL, Body: json.RawMessage("{\"n\": \"\xfe\"}")}, "",
			`args.body.n: contains invalid UTF-8 (byte 0xfe), which PostgreSQL cannot store`},
		{"NUL in metadata", good, `{"note": "\u0000"}`,
			`invalid metadata: metadata.note: contains a NUL character (\u0000), which PostgreSQL cannot store`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &river.InsertOpts{}
			if tt.metadata != "" {
				opts.Metadata = []byte(tt.metadata)
			}
			prefix := "invalid args: "
			if tt.metadata != "" {
				prefix = ""
			}
			_, err := client.InsertMany(context.Background(), []river.InsertManyParams{{Args: good}, {Args: tt.args, InsertOpts: opts}, {Args: good}})
			_, ok := errors.AsType[*storable.JSONError](err)
			require.True(t, ok)
			require.Equal(t, prefix != "", errors.Is(err, jobs.ErrInvalidArgs))
			require.EqualError(t, err, "insert http_request job 2 of 3: "+prefix+tt.wantErr)

			_, err = client.Insert(context.Background(), tt.args, opts)
			require.EqualError(t, err, "insert http_request job: "+prefix+tt.wantErr)
		})
	}
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&n))
	require.Zero(t, n)
}
