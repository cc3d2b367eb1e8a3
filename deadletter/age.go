package deadletter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseAge parses an age such as "30d", "12h", "90m", "1d12h" or "45s":
// time.ParseDuration's units plus d (24 hours) and w (7 days). It rejects
// empty, negative, zero and overflowing values with an error that quotes
// the input; callers say which flag or field it came from.
func ParseAge(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("empty age: want a number and a unit such as 30d, 12h or 90m")
	}
	if in[0] == '-' || in[0] == '+' {
		return 0, fmt.Errorf("age %q: want a positive duration such as 30d, 12h or 90m", s)
	}
	var total time.Duration
	rest := in
	for rest != "" {
		// A run of digits (and '.') then a unit.
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("age %q: want a number and a unit such as 30d, 12h or 90m", s)
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		var part time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("age %q: bad number %q", s, num)
			}
			per := 24 * time.Hour
			if unit == "w" {
				per *= 7
			}
			v := f * float64(per)
			if v >= math.MaxInt64 || math.IsNaN(v) {
				return 0, fmt.Errorf("age %q is too large", s)
			}
			part = time.Duration(v)
		case "":
			return 0, fmt.Errorf("age %q: %q has no unit (use d, h, m or s)", s, num)
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("age %q: unknown unit %q (use w, d, h, m, s, ms)", s, unit)
			}
			part = d
		}
		if total > math.MaxInt64-part {
			return 0, fmt.Errorf("age %q is too large", s)
		}
		total += part
	}
	if total <= 0 {
		return 0, fmt.Errorf("age %q: want a positive duration such as 30d, 12h or 90m", s)
	}
	return total, nil
}
