package console

import (
	"cmp"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"time"
)

func sortedKeys[M ~map[K]V, K cmp.Ordered, V any](m M) []K { return slices.Sorted(maps.Keys(m)) }

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	// when formats a time in UTC to the second; "" for nil or zero.
	"when": func(t any) string {
		var tt time.Time
		switch x := t.(type) {
		case time.Time:
			tt = x
		case *time.Time:
			if x == nil {
				return ""
			}
			tt = *x
		}
		if tt.IsZero() {
			return ""
		}
		return tt.UTC().Format("2006-01-02 15:04:05Z")
	},
	// iso is the machine-readable form for <time datetime>.
	"iso": func(t any) string {
		switch x := t.(type) {
		case time.Time:
			return x.UTC().Format(time.RFC3339)
		case *time.Time:
			if x != nil {
				return x.UTC().Format(time.RFC3339)
			}
		}
		return ""
	},
	// ago says how long ago (or, negative, in how long) t is, roughly.
	"ago": func(t any) string {
		var tt time.Time
		switch x := t.(type) {
		case time.Time:
			tt = x
		case *time.Time:
			if x == nil {
				return ""
			}
			tt = *x
		}
		d := time.Since(tt)
		if d < 0 {
			return "in " + roundDur(-d)
		}
		return roundDur(d) + " ago"
	},
	// ms formats milliseconds as a duration.
	"ms": func(p *int64) string {
		if p == nil {
			return ""
		}
		return (time.Duration(*p) * time.Millisecond).String()
	},
	"seconds": func(s float64) string { return roundDur(time.Duration(s * float64(time.Second))) },
	"pct": func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.1f %%", *p)
	},
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"dur":     func(d time.Duration) string { return d.String() },
	"add":     func(a, b int) int { return a + b },
	"color":   classColor,
	"classes": classNames,
}

func roundDur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
