package jobs_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/jobs"
)

// Every builtin kind documents each field of its args, as its JSON decoder
// knows them, in declaration order.
func TestBuiltinKindsDocumentTheirArgs(t *testing.T) {
	t.Parallel()
	reg := jobs.Builtin()
	k, err := reg.Lookup(jobs.KindHTTPRequest)
	require.NoError(t, err)
	names := make([]string, len(k.Args))
	types := map[string]string{}
	for i, a := range k.Args {
		names[i] = a.Name
		types[a.Name] = a.Type
		require.NotEmpty(t, a.Help, a.Name)
	}
	require.Equal(t, []string{"url", "method", "headers", "body", "timeout_seconds", "operation_key"}, names)
	require.Equal(t, map[string]string{"url": "string", "method": "string", "headers": "object", "body": "any JSON",
		"timeout_seconds": "number", "operation_key": "string"}, types)
	require.True(t, strings.HasPrefix(k.Args[0].Help, "required"), k.Args[0].Help)

	// The same names as the JSON of args with every field set.
	raw, err := json.Marshal(jobs.HTTPRequestArgs{URL: "u", Method: "m", Headers: map[string]string{"a": "b"}, Body: []byte(`1`), TimeoutSeconds: 1, ExplicitOperationKey: "k"})
	require.NoError(t, err)
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(raw, &decoded))
	require.ElementsMatch(t, names, slices.Collect(maps.Keys(decoded)))

	for _, name := range reg.Names() {
		k, _ := reg.Lookup(name)
		require.NotEmpty(t, k.Args, "kind %s lists its args", name)
	}
}

func TestArgsOf(t *testing.T) {
	t.Parallel()
	type args struct {
		A       string          `json:"a" help:"the a"`
		B       *int            `json:"b,omitempty" help:"the b"`
		C       []string        `json:"c" help:"the c"`
		D       bool            `json:"d" help:"the d"`
		E       json.RawMessage `json:"e" help:"the e"`
		Skipped string          `json:"-"`
		hidden  string
		Plain   float32 `help:"no json tag"`
	}
	_ = args{}.hidden
	require.Equal(t, []jobs.Arg{
		{Name: "a", Type: "string", Help: "the a"},
		{Name: "b", Type: "number", Help: "the b"},
		{Name: "c", Type: "array", Help: "the c"},
		{Name: "d", Type: "true or false", Help: "the d"},
		{Name: "e", Type: "any JSON", Help: "the e"},
		{Name: "Plain", Type: "number", Help: "no json tag"},
	}, jobs.ArgsOf(&args{}))

	type undocumented struct {
		URL string `json:"url"`
	}
	require.PanicsWithValue(t, "jobs: ArgsOf(jobs_test.undocumented): field URL has no help tag", func() { jobs.ArgsOf(undocumented{}) })
	require.Panics(t, func() { jobs.ArgsOf(3) })
}
