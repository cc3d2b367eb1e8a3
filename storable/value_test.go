package storable_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/storable"
)

type valueInner struct {
	Name string            `json:"name"`
	Tags []string          `json:"tags,omitempty"`
	Meta map[string]string `json:"meta"`
}

type valueBase struct {
	Source string `json:"source"`
}

type valueArgs struct {
	valueBase
	URL     string          `json:"url"`
	Body    json.RawMessage `json:"body"`
	Inner   *valueInner     `json:"inner"`
	Any     any             `json:"any"`
	Skipped string          `json:"-"`
	private string
	Plain   string
	Raw     []byte
	When    time.Time `json:"when"`
}

// ptrMarshaled encodes itself through a pointer only: encoding/json calls
// MarshalJSON when the value is addressable (inside a pointed-to struct),
// and encodes the plain string otherwise.
type ptrMarshaled string

func (p *ptrMarshaled) MarshalJSON() ([]byte, error) { return json.Marshal("custom") }

type withPtrMarshaled struct {
	P ptrMarshaled `json:"p"`
}

func TestCheckValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, ""},
		{"storable", valueArgs{URL: "https://é.example", Inner: &valueInner{Name: "n", Meta: map[string]string{"k": "v"}}}, ""},
		{"invalid UTF-8 in a field", valueArgs{URL: "http://x/\xff"}, `args.url: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"NUL in a nested field", valueArgs{Inner: &valueInner{Name: "a\x00"}}, `args.inner.name: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"in a slice", valueArgs{Inner: &valueInner{Tags: []string{"ok", "\xfe"}}}, `args.inner.tags[1]: contains invalid UTF-8 (byte 0xfe), which PostgreSQL cannot store`},
		{"in a map value", valueArgs{Inner: &valueInner{Meta: map[string]string{"Content-Type": "\xff"}}}, `args.inner.meta["Content-Type"]: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"in a map key", map[string]int{"k\xff": 1}, "args: the key \"k\uFFFD\" contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store"},
		{"in an interface", valueArgs{Any: []any{map[string]any{"x": "\xc3"}}}, `args.any[0].x: contains invalid UTF-8 (byte 0xc3), which PostgreSQL cannot store`},
		{"embedded struct inlined", valueArgs{valueBase: valueBase{Source: "\xff"}}, `args.source: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"field without a tag", valueArgs{Plain: "\x00"}, `args.Plain: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"json \"-\" is not encoded", valueArgs{Skipped: "\xff"}, ""},
		{"unexported is not encoded", valueArgs{private: "\xff"}, ""},
		{"bytes are base64", valueArgs{Raw: []byte("\xff\x00")}, ""},
		{"a json.Marshaler is left to CheckJSON", valueArgs{Body: json.RawMessage("\"\xff\"")}, ""},
		{"a pointer marshaler, addressable, is left to CheckJSON", &withPtrMarshaled{P: "\xff"}, ""},
		{"a pointer marshaler, not addressable, is a string", withPtrMarshaled{P: "\xff"}, `args.p: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"a top-level string", "\xff", `args: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := storable.CheckValue(tt.v, "args")
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			_, ok := errors.AsType[*storable.JSONError](err)
			require.True(t, ok)
		})
	}
}

type cycle struct {
	Next *cycle `json:"next"`
	S    string `json:"s"`
}

func TestCheckValueStopsOnACycle(t *testing.T) {
	t.Parallel()
	c := &cycle{S: "ok"}
	c.Next = c
	require.NoError(t, storable.CheckValue(c, "args"))
}
