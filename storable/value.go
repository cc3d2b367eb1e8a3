package storable

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxValueDepth bounds how deep CheckValue follows a Go value (a cycle of
// pointers would otherwise never end; encoding/json refuses those anyway).
const maxValueDepth = 100

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// CheckValue returns a [*JSONError] for the first string of the Go value v
// that PostgreSQL cannot store — one holding a NUL or invalid UTF-8 — among
// those encoding/json would encode: string values and map keys inside
// structs (exported fields, named by their json tag; "-" skipped; embedded
// structs inlined), maps, slices, arrays, pointers and interfaces. root names
// v in the error's path, as for [CheckJSON].
//
// It exists because json.Marshal silently replaces invalid UTF-8 in a Go
// string with U+FFFD, so the encoding no longer shows it: run CheckValue on
// the value and [CheckJSON] on its encoding. Values that encode themselves
// (json.Marshaler, such as json.RawMessage, and encoding.TextMarshaler) are
// not looked into: CheckJSON on the encoding covers them. It returns nil for
// a nil v.
func CheckValue(v any, root string) error {
	if v == nil {
		return nil
	}
	var segments [8]valueSegment
	path := segments[:0]
	return checkValue(reflect.ValueOf(v), root, &path, 0)
}

// valueSegment is one step of CheckValue's path: a member name, or an
// element's index or map key rendered on demand.
type valueSegment struct {
	name  string // member name, or the map key
	index int
	elem  bool // an array element (index) or a map entry with a non-string key (name)
}

// renderValuePath writes root and path as CheckJSON's paths read.
func renderValuePath(root string, path []valueSegment) string {
	var b strings.Builder
	b.WriteString(root)
	for _, seg := range path {
		switch {
		case seg.elem && seg.name == "":
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
		case seg.elem:
			b.WriteString("[" + seg.name + "]")
		default:
			b.WriteString(pathName(seg.name))
		}
	}
	return b.String()
}

func checkValue(v reflect.Value, root string, path *[]valueSegment, depth int) error {
	if depth > maxValueDepth || !v.IsValid() {
		return nil
	}
	t := v.Type()
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		if m := marshalerOf(t); m.value || m.pointer && v.CanAddr() {
			return nil
		}
	}
	switch v.Kind() {
	case reflect.String:
		if p := stringProblem(v.String()); p != "" {
			return &JSONError{Path: renderValuePath(root, *path), Problem: p}
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkValue(v.Elem(), root, path, depth+1)
	case reflect.Struct:
		for _, f := range structPlanOf(t) {
			fv := v.Field(f.index)
			switch {
			case f.inline:
				if err := checkValue(fv, root, path, depth+1); err != nil {
					return err
				}
				continue
			case f.marshaler.value || f.marshaler.pointer && fv.CanAddr():
				continue // what checkValue would say of it
			case f.kind == reflect.String:
				if stringProblem(fv.String()) == "" {
					continue // the common case, without a call
				}
			}
			*path = append(*path, valueSegment{name: f.name})
			if err := checkValue(fv, root, path, depth+1); err != nil {
				return err
			}
			*path = (*path)[:len(*path)-1]
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			if k.Kind() == reflect.String {
				if p := stringProblem(k.String()); p != "" {
					return &JSONError{Path: renderValuePath(root, *path), InKey: true, Key: Text(k.String(), 0), Problem: p}
				}
				*path = append(*path, valueSegment{name: k.String()})
			} else {
				*path = append(*path, valueSegment{name: fmt.Sprint(k.Interface()), elem: true})
			}
			if err := checkValue(iter.Value(), root, path, depth+1); err != nil {
				return err
			}
			*path = (*path)[:len(*path)-1]
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // bytes: encoded as base64
		}
		for i := range v.Len() {
			*path = append(*path, valueSegment{index: i, elem: true})
			if err := checkValue(v.Index(i), root, path, depth+1); err != nil {
				return err
			}
			*path = (*path)[:len(*path)-1]
		}
	}
	return nil
}

// fieldPlan is one struct field encoding/json encodes, as CheckValue walks
// it.
type fieldPlan struct {
	index int
	// name is the field's JSON name (its tag's, else the Go name).
	name string
	// inline is an embedded struct (or pointer to one) without a tag name:
	// its fields are the outer struct's.
	inline bool
	// kind and marshaler are the field type's; marshaler is left zero for
	// a pointer or interface type (checkValue looks at what it holds).
	kind      reflect.Kind
	marshaler marshaler
}

// structPlans caches structPlanOf: reading a struct type's fields and tags
// cost more than checking the strings of a value of a few fields.
var structPlans sync.Map // reflect.Type -> []fieldPlan

// structPlanOf returns the fields of struct type t that encoding/json
// encodes, in order: exported ones (named by their json tag; "-" skipped)
// and embedded structs without a tag name (inlined).
func structPlanOf(t reflect.Type) []fieldPlan {
	if p, ok := structPlans.Load(t); ok {
		return p.([]fieldPlan)
	}
	var plan []fieldPlan
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && (f.Type.Kind() == reflect.Struct || f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct) {
			plan = append(plan, fieldPlan{index: i, inline: true})
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fp := fieldPlan{index: i, name: name, kind: f.Type.Kind()}
		if fp.kind != reflect.Pointer && fp.kind != reflect.Interface {
			fp.marshaler = marshalerOf(f.Type)
		}
		plan = append(plan, fp)
	}
	structPlans.Store(t, plan)
	return plan
}

// marshaler says whether a type encodes itself (json.Marshaler or
// encoding.TextMarshaler): as a value, or through a pointer to it.
type marshaler struct{ value, pointer bool }

// marshalers caches marshalerOf: reflect's Implements is the costliest
// step of CheckValue on a value of a few fields.
var marshalers sync.Map // reflect.Type -> marshaler

// marshalerOf returns whether t, or a pointer to t, encodes itself.
func marshalerOf(t reflect.Type) marshaler {
	if m, ok := marshalers.Load(t); ok {
		return m.(marshaler)
	}
	pt := reflect.PointerTo(t)
	m := marshaler{
		value:   t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType),
		pointer: pt.Implements(jsonMarshalerType) || pt.Implements(textMarshalerType),
	}
	marshalers.Store(t, m)
	return m
}

// stringProblem says what PostgreSQL refuses in s, in CheckJSON's words; ""
// when s is storable.
func stringProblem(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return `contains a NUL character (\u0000)`
	}
	if utf8.ValidString(s) {
		return ""
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Sprintf("contains invalid UTF-8 (byte 0x%02x)", s[i])
		}
		i += size
	}
	return ""
}

// pathName is the path segment of an object member named name.
func pathName(name string) string {
	if isIdentifier(name) {
		return "." + name
	}
	return "[" + strconv.Quote(name) + "]"
}
