package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// Every flag of a rebound command that takes a time, a duration, a cursor,
// an ID or a number, given a bad value: the one line on stderr is exactly
// the message that names the flag (and the value), exit code 1, nothing on
// stdout, every table as it was. Also a --config file that is not UTF-8.
func TestBadValueNamesItsFlag(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	seedBadInput(t, db)
	dir := t.TempDir()
	utf16 := filepath.Join(dir, "utf16.yaml")
	require.NoError(t, os.WriteFile(utf16, []byte("\xff\xfea\x00l\x00e\x00r\x00t\x00s\x00:\x00\n\x00"), 0o600))
	latin1 := filepath.Join(dir, "latin1.yaml")
	require.NoError(t, os.WriteFile(latin1, []byte("alerts:\n  channels:\n    ops: {type: webhook, url: \"https://h\xf4te.example.com/x\"}\n"), 0o600))
	set := []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "5", "--severity", "error"}
	const cursorHint = `: want the cursor the previous page printed (its "more:" line, or next_cursor with --json)`

	tests := []struct {
		name string
		args []string
		want string // the whole of stderr, after "rebound: " and before "\n"
	}{
		{"dlq list after not a cursor", []string{"dlq", "list", "--after", "garbage"}, `invalid --after "garbage"` + cursorHint},
		{"dlq list after entry zero", []string{"dlq", "list", "--after", "id:0"}, `invalid --after "id:0"` + cursorHint},
		{"dlq list after a bare ID", []string{"dlq", "list", "--after", "12"}, `invalid --after "12"` + cursorHint},
		{"dlq list limit not a number", []string{"dlq", "list", "--limit", "x"}, `invalid --limit "x": want a whole number`},
		{"dlq list limit zero", []string{"dlq", "list", "--limit", "0"}, "invalid --limit 0: want 1 to 1000"},
		{"dlq list since not a time", []string{"dlq", "list", "--since", "garbage"}, `invalid --since: "garbage" is neither an RFC 3339 time nor an age such as 24h or 7d`},
		{"dlq list until not a time", []string{"dlq", "list", "--until", "garbage"}, `invalid --until: "garbage" is neither an RFC 3339 time nor an age such as 24h or 7d`},
		{"dlq list until before since", []string{"dlq", "list", "--since", "1h", "--until", "2h"}, `invalid --until "2h": must be later than --since "1h"`},
		{"dlq list until at since", []string{"dlq", "list", "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"},
			`invalid --until "2026-01-01T00:00:00Z": must be later than --since "2026-01-01T00:00:00Z"`},
		{"dlq list fingerprint empty", []string{"dlq", "list", "--fingerprint", ""}, "invalid --fingerprint \"\": empty: give an ID from `rebound dlq stats`, or a fingerprint or reason text"},
		{"dlq list fingerprint blank", []string{"dlq", "list", "--fingerprint", "  "}, "invalid --fingerprint \"  \": empty: give an ID from `rebound dlq stats`, or a fingerprint or reason text"},
		{"dlq stats fingerprint invalid UTF-8", []string{"dlq", "stats", "--fingerprint", "\xff"}, `invalid --fingerprint "\xff": not valid UTF-8`},
		{"dlq stats top not a number", []string{"dlq", "stats", "--top", "x"}, `invalid --top "x": want a whole number`},
		{"dlq retry since not a time", []string{"dlq", "retry", "--all", "--since", "x"}, `invalid --since: "x" is neither an RFC 3339 time nor an age such as 24h or 7d`},
		{"dlq resolve until before since", []string{"dlq", "resolve", "--all", "--note", "n", "--since", "1h", "--until", "3h"}, `invalid --until "3h": must be later than --since "1h"`},
		{"dlq resolve fingerprint empty", []string{"dlq", "resolve", "--all", "--note", "n", "--fingerprint", ""}, "invalid --fingerprint \"\": empty: give an ID from `rebound dlq stats`, or a fingerprint or reason text"},
		{"dlq purge age not an age", []string{"dlq", "purge", "--older-than", "garbage"}, `invalid --older-than: age "garbage": want a number and a unit such as 30d, 12h or 90m`},
		{"breaker open for not a duration", []string{"breaker", "open", "api.example.com", "--for", "garbage"}, `invalid --for "garbage": want a duration such as 30s, 5m or 1h30m`},
		{"batch list limit not a number", []string{"batch", "list", "--limit", "x"}, `invalid --limit "x": want a whole number`},
		{"health window not a duration", []string{"health", "--window", "x"}, `invalid --window "x": want a duration such as 30s, 5m or 1h30m`},
		{"alerts history limit not a number", []string{"alerts", "history", "--limit", "x"}, `invalid --limit "x": want a whole number`},
		{"alerts set threshold not a number", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "x", "--severity", "error"}, `invalid --threshold "x": want a number`},
		{"alerts set threshold negative", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "-5", "--severity", "error"}, `invalid --threshold "-5": a number from 0 up`},
		{"alerts set threshold absurd", []string{"alerts", "set", "x", "--metric", "dlq_growth", "--threshold", "1e16", "--severity", "error"}, `invalid --threshold "1e+16": a number from 0 up`},
		{"alerts set threshold a rate of 100", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "100", "--severity", "error"}, `invalid --threshold "100": a failure rate is a percent below 100`},
		{"alerts set min jobs not a number", append(set, "--min-jobs", "x"), `invalid --min-jobs "x": want a whole number`},
		{"alerts set min jobs negative", append(set, "--min-jobs", "-3"), `invalid --min-jobs "-3": from 0 to 1000000000`},
		{"alerts set window not a duration", append(set, "--window", "garbage"), `invalid --window "garbage": a duration like 15m or 900 (seconds)`},
		{"alerts set window negative", append(set, "--window", "-1m"), `invalid --window "-1m": whole seconds from 1m to 720h`},
		{"alerts set window a fraction of a second", append(set, "--window", "90s500ms"), `invalid --window "90s500ms": whole seconds from 1m to 720h`},
		{"alerts set window seconds out of range", append(set, "--window", "99999999999"), `invalid --window "99999999999": out of range`},
		{"alerts set cooldown not a duration", append(set, "--cooldown", "garbage"), `invalid --cooldown "garbage": a duration like 15m or 900 (seconds)`},
		{"alerts set cooldown too long", append(set, "--cooldown", "721h"), `invalid --cooldown "721h": whole seconds from 0 to 720h`},
		{"alerts set enabled not a bool", append(set, "--enabled=maybe"), `invalid --enabled "maybe": want true or false`},
		{"alerts set metric unknown", []string{"alerts", "set", "x", "--metric", "cpu", "--threshold", "5", "--severity", "error"}, `invalid --metric "cpu": one of failure_rate, breaker_open, dlq_unresolved, dlq_growth, dlq_oldest_age`},
		{"alerts set config in UTF-16", append(set, "--config", utf16), utf16 + ": not UTF-8 (it looks like UTF-16): the configuration file must be UTF-8"},
		// Every single-value flag refuses a second use (pflag would keep the
		// last, silently); list flags such as dlq list's --kind repeat.
		{"alerts set channels twice", append(set, "--channels", "hook", "--channels", "hook2"), "--channels given twice: give it once"},
		{"alerts set threshold twice", append(set, "--threshold", "90000"), "--threshold given twice: give it once"},
		{"dlq resolve note twice", []string{"dlq", "resolve", "3", "--note", "a", "--note", "b"}, "--note given twice: give it once"},
		{"breaker open for twice", []string{"breaker", "open", "k1", "--for", "20s", "--for", "30s"}, "--for given twice: give it once"},
		{"alerts test config in Latin-1", []string{"alerts", "test", "ops", "--config", latin1}, latin1 + ": not UTF-8 (byte 0xF4 on line 3): the configuration file must be UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, "rebound: "+tt.want+"\n", refused(t, db, tt.args...))
		})
	}
}
