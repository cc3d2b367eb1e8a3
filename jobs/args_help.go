package jobs

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Arg documents one field of a kind's args, the JSON object a job is
// inserted with.
type Arg struct {
	// Name is the field's JSON name ("timeout_seconds").
	Name string
	// Type is the JSON type expected: "string", "number", "true or false",
	// "object", "array" or "any JSON".
	Type string
	// Help says what the field means, whether it is required, its default
	// and its limits, in one sentence or two.
	Help string
}

// ArgsOf documents the fields of the args struct v (a struct or a pointer
// to one) in declaration order: each exported field's JSON name (from its
// json tag), JSON type and the text of its `help:"..."` tag. It panics when
// a field encoded in JSON has no help tag, so an undocumented field is a
// build defect that any test building the registry reveals.
func ArgsOf(v any) []Arg {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("jobs: ArgsOf(%s): not a struct", t))
	}
	var out []Arg
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		help := f.Tag.Get("help")
		if help == "" {
			panic(fmt.Sprintf("jobs: ArgsOf(%s): field %s has no help tag", t, f.Name))
		}
		out = append(out, Arg{Name: name, Type: argType(f.Type), Help: help})
	}
	return out
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// argType names the JSON type a Go field decodes from.
func argType(t reflect.Type) string {
	if t == rawMessageType {
		return "any JSON"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return argType(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "any JSON"
	}
}
