package alert_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/notify"
)

// UnknownChannels names every enabled rule and channel the configuration
// lacks, rules in the order given and channels in the rule's order;
// disabled rules are not checked.
func TestUnknownChannels(t *testing.T) {
	t.Parallel()
	hook := notify.Channel{Type: notify.TypeWebhook, URL: "https://hooks.example.com/x"}
	configured := map[string]notify.Channel{"slack": hook, "hook": hook}
	rule := func(name string, enabled bool, channels ...string) alert.Rule {
		return alert.Rule{Name: name, Enabled: enabled, Channels: channels}
	}
	have := []string{"hook", "slack"}
	tests := []struct {
		name       string
		rules      []alert.Rule
		configured map[string]notify.Channel
		want       []*alert.UnknownChannelError
		wantErrs   []string
	}{
		{name: "every channel configured", rules: []alert.Rule{rule("a", true, "hook", "slack"), rule("b", true)}, configured: configured},
		{name: "no rules", configured: nil},
		{name: "no channel named, none configured", rules: []alert.Rule{rule("a", true)}, configured: nil},
		{name: "disabled rule not checked", rules: []alert.Rule{rule("a", false, "pager")}, configured: configured},
		{name: "two unknown channels of one rule", rules: []alert.Rule{rule("a", true, "hook"), rule("b", true, "slack", "pager", "mail")}, configured: configured,
			want: []*alert.UnknownChannelError{{Rule: "b", Channel: "pager", Configured: have}, {Rule: "b", Channel: "mail", Configured: have}},
			wantErrs: []string{
				`alert rule "b" names channel "pager", which is not configured (configured channels: hook, slack)`,
				`alert rule "b" names channel "mail", which is not configured (configured channels: hook, slack)`}},
		{name: "every enabled rule", rules: []alert.Rule{rule("a", false, "x"), rule("b", true, "y"), rule("c", true, "hook", "z")}, configured: configured,
			want: []*alert.UnknownChannelError{{Rule: "b", Channel: "y", Configured: have}, {Rule: "c", Channel: "z", Configured: have}},
			wantErrs: []string{
				`alert rule "b" names channel "y", which is not configured (configured channels: hook, slack)`,
				`alert rule "c" names channel "z", which is not configured (configured channels: hook, slack)`}},
		{name: "nothing configured", rules: []alert.Rule{rule("breaker-open", true, "hook")}, configured: nil,
			want:     []*alert.UnknownChannelError{{Rule: "breaker-open", Channel: "hook", Configured: []string{}}},
			wantErrs: []string{`alert rule "breaker-open" names channel "hook", which is not configured (no channel is configured)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := alert.UnknownChannels(tt.rules, tt.configured)
			require.Equal(t, tt.want, got)
			errs := make([]string, 0, len(got))
			for _, uc := range got {
				errs = append(errs, uc.Error())
			}
			if tt.wantErrs == nil {
				tt.wantErrs = []string{}
			}
			require.Equal(t, tt.wantErrs, errs)
		})
	}
}

// Validate refuses each setting with a *FieldError naming it (the field as
// job_alert_config names it, the value, the problem), so rebound alerts set
// can name the flag; its message is "FIELD VALUE: PROBLEM".
func TestValidateFieldError(t *testing.T) {
	t.Parallel()
	good := alert.Rule{Name: "r", Metric: alert.MetricFailureRate, Threshold: 20, Window: 15 * time.Minute, Severity: alert.SeverityError, Cooldown: time.Hour}
	require.NoError(t, good.Validate())
	tests := []struct {
		name   string
		change func(*alert.Rule)
		want   alert.FieldError
	}{
		{"name", func(r *alert.Rule) { r.Name = "Bad Name" }, alert.FieldError{Field: "name", Value: `"Bad Name"`, Problem: "use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)"}},
		{"metric", func(r *alert.Rule) { r.Metric = "cpu" }, alert.FieldError{Field: "metric", Value: `"cpu"`, Problem: "one of failure_rate, breaker_open, dlq_unresolved, dlq_growth, dlq_oldest_age"}},
		{"threshold negative", func(r *alert.Rule) { r.Threshold = -1 }, alert.FieldError{Field: "threshold", Value: "-1", Problem: "a number from 0 up"}},
		{"threshold a rate of 100", func(r *alert.Rule) { r.Threshold = 100 }, alert.FieldError{Field: "threshold", Value: "100", Problem: "a failure rate is a percent below 100"}},
		{"window", func(r *alert.Rule) { r.Window = 10 * time.Second }, alert.FieldError{Field: "window", Value: "10s", Problem: "whole seconds from 1m to 720h"}},
		{"min_jobs", func(r *alert.Rule) { r.MinJobs = -3 }, alert.FieldError{Field: "min_jobs", Value: "-3", Problem: "from 0 to 1000000000"}},
		{"severity", func(r *alert.Rule) { r.Severity = "loud" }, alert.FieldError{Field: "severity", Value: `"loud"`, Problem: "warning, error or critical"}},
		{"cooldown", func(r *alert.Rule) { r.Cooldown = 1500 * time.Millisecond }, alert.FieldError{Field: "cooldown", Value: "1.5s", Problem: "whole seconds from 0 to 720h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := good
			tt.change(&r)
			err := r.Validate()
			fe, ok := errors.AsType[*alert.FieldError](err)
			require.True(t, ok, "%T %v", err, err)
			require.Equal(t, tt.want, *fe)
			require.EqualError(t, err, tt.want.Field+" "+tt.want.Value+": "+tt.want.Problem)
		})
	}
}
