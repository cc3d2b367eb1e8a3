package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// checkNode walks node, the YAML value at key path (e.g.
// "alerts.channels.ops"; "" for the whole file), against t, the Go type it
// decodes into, and returns one problem per unknown key, key given twice,
// or value of the wrong shape or type, each naming the key path and the
// line: `alerts.channels.ops.colour: unknown setting (known: type, url,
// secret, smtp; line 5)`, `alerts.interval: "soon" is not a duration, e.g.
// 30s, 15m or 1h (line 2)`. A type that decodes itself (yaml.Unmarshaler: the retry:
// and breaker: sections, which name their keys the same way) is left to
// its decoder. When unset is not "", a number setting whose value is
// exactly unset (LoadWithoutSecrets' stand-in for a ${NAME} unset here)
// (or duration) is set to 0 in node, so that it decodes as its default;
// its text was never the file's.
func checkNode(node *yaml.Node, t reflect.Type, path, unset string) []string {
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return nil
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return nil // the zero value, as yaml.v3 decodes it
	}
	at := func(problem string) []string {
		if path == "" {
			return []string{fmt.Sprintf("the file %s (line %d)", problem, node.Line)}
		}
		return []string{fmt.Sprintf("%s: %s (line %d)", path, problem, node.Line)}
	}
	switch t.Kind() {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return at("must be a mapping of settings, not " + shape(node))
		}
		fields := map[string]reflect.Type{}
		var known []string
		for f := range structFields(t) {
			fields[f.name] = f.typ
			known = append(known, f.name)
		}
		return eachKey(node, path, func(key, value *yaml.Node, k string) []string {
			ft, ok := fields[key.Value]
			if !ok {
				return []string{fmt.Sprintf("%s: unknown setting (known: %s; line %d)", k, strings.Join(known, ", "), key.Line)}
			}
			return checkNode(value, ft, k, unset)
		})
	case reflect.Map:
		if node.Kind != yaml.MappingNode {
			return at("must be a mapping, not " + shape(node))
		}
		return eachKey(node, path, func(_, value *yaml.Node, k string) []string {
			return checkNode(value, t.Elem(), k, unset)
		})
	case reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			return at("must be a list, not " + shape(node))
		}
		var problems []string
		for i, item := range node.Content {
			problems = append(problems, checkNode(item, t.Elem(), path+"["+strconv.Itoa(i)+"]", unset)...)
		}
		return problems
	case reflect.Pointer:
		return checkNode(node, t.Elem(), path, unset)
	}
	if node.Kind != yaml.ScalarNode {
		return at("must be a single value, not " + shape(node))
	}
	want := ""
	switch {
	case t == reflect.TypeFor[time.Duration]():
		want = "a duration, e.g. 30s, 15m or 1h"
	case t.Kind() == reflect.Bool:
		want = "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		want = "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		want = "a number"
	}
	if unset != "" && node.Value == unset && want != "" && want != "true or false" {
		node.Value, node.Tag, node.Style = "0", "!!int", 0
		if t == reflect.TypeFor[time.Duration]() {
			node.Value, node.Tag = "0s", "!!str"
		}
		return nil
	}
	// The tag check: yaml.v3 decodes 2.5 into an int as 2, silently.
	if err := node.Decode(reflect.New(t).Interface()); err != nil || want == "a whole number" && node.Tag != "!!int" {
		if want == "" {
			want = "a " + t.String()
		}
		if _, err := strconv.ParseFloat(node.Value, 64); err == nil && node.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			want += ": write it without quotes"
		}
		return at(fmt.Sprintf("%q is not %s", node.Value, want))
	}
	return nil
}

// eachKey calls fn for each key of mapping node in file order, with its
// key path, and collects the problems; a key given twice is one. A merge
// key (<<: *anchor) brings in the keys of the mapping(s) it names that
// node does not set itself.
func eachKey(node *yaml.Node, path string, fn func(key, value *yaml.Node, keyPath string) []string) []string {
	var problems []string
	lines := map[string]int{} // node's own keys → line
	var merged []*yaml.Node
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		if key.Tag == "!!merge" {
			if value.Kind == yaml.AliasNode && value.Alias != nil {
				value = value.Alias
			}
			if value.Kind == yaml.SequenceNode {
				merged = append(merged, value.Content...)
			} else {
				merged = append(merged, value)
			}
			continue
		}
		k := joinKey(path, key.Value)
		if line, seen := lines[key.Value]; seen {
			problems = append(problems, fmt.Sprintf("%s: set twice (lines %d and %d)", k, line, key.Line))
			continue
		}
		lines[key.Value] = key.Line
		problems = append(problems, fn(key, value, k)...)
	}
	for _, m := range merged {
		if m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		if m.Kind != yaml.MappingNode {
			continue // yaml.v3 refuses it when decoding
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if _, own := lines[m.Content[i].Value]; !own {
				problems = append(problems, fn(m.Content[i], m.Content[i+1], joinKey(path, m.Content[i].Value))...)
			}
		}
	}
	return problems
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type field struct {
	name string
	typ  reflect.Type
}

// structFields yields the settings of struct type t as yaml.v3 names them:
// the tag's name, else the field's name in lower case; "-" and unexported
// fields are not settings.
func structFields(t reflect.Type) func(yield func(field) bool) {
	return func(yield func(field) bool) {
		for f := range t.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if !yield(field{name, f.Type}) {
				return
			}
		}
	}
}

// shape names what a node is, for "must be a mapping, not a list".
func shape(node *yaml.Node) string {
	switch node.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(node.Value)
}
