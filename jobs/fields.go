package jobs

import (
	"encoding/json"
	"reflect"
	"strings"
)

// Field is one field of a kind's args as JSON names it.
type Field struct {
	// Name is the field's JSON name.
	Name string
	// Type is its JSON type: "string", "integer", "number", "boolean",
	// "object", "array", or "json" (any JSON value: json.RawMessage,
	// interfaces).
	Type string
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// Fields returns the fields of the kind's args struct ([Kind.Args]) in
// declaration order, by their JSON names (fields tagged "-" and unexported
// fields left out; embedded structs flattened as encoding/json does). nil
// when the kind declares no Args.
func (k Kind) Fields() []Field {
	if k.Args == nil {
		return nil
	}
	t := reflect.TypeOf(k.Args)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return structFields(t)
}

func structFields(t reflect.Type) []Field {
	var out []Field
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			out = append(out, structFields(ft)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, Field{Name: name, Type: jsonType(ft)})
	}
	return out
}

func jsonType(t reflect.Type) string {
	if t == rawMessageType {
		return "json"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "json"
	}
}
