package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/internal/config"
	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/notify"
)

// newAlertsCmd is `rebound alerts`: the alert rules (job_alert_config),
// their history, and a test of a channel. Changes apply live: pods read the
// rules at every evaluation.
func newAlertsCmd(a *app) *cobra.Command {
	cmd := cli.RequireSubcommand(&cobra.Command{
		Use:   "alerts",
		Short: "List and change alert rules, read their history, test a channel",
		Long: `Alert rules fire per subject (a job kind, a circuit breaker key, or "dlq") while
their metric is above the threshold: once when they start, again after the
cooldown only while still true, and one resolved notice when they clear. Changes
apply at the next evaluation of any pod (no restart).`,
	})
	cmd.AddCommand(alertsListCmd(a), alertsHistoryCmd(a), alertsSetCmd(a), alertsEnableCmd(a, true), alertsEnableCmd(a, false), alertsTestCmd(a))
	return cmd
}

// ruleView is a rule as the CLI prints it.
type ruleView struct {
	alert.Rule
	WindowSeconds   int64 `json:"window_seconds"`
	CooldownSeconds int64 `json:"cooldown_seconds"`
}

func alertsListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the alert rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := a.connectMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			rules, err := alert.NewRules(pool).List(cmd.Context())
			if err != nil {
				return err
			}
			views := make([]ruleView, len(rules))
			rows := make([][]string, len(rules))
			for i, r := range rules {
				views[i] = ruleView{Rule: r, WindowSeconds: r.WindowSeconds(), CooldownSeconds: r.CooldownSeconds()}
				enabled := "yes"
				if !r.Enabled {
					enabled = "no"
				}
				window := "-" // a state now: the window is ignored
				if alert.UsesWindow(r.Metric) {
					window = r.Window.String()
				}
				channels := make([]string, len(r.Channels))
				for j, c := range r.Channels {
					channels[j] = termText(c)
				}
				rows[i] = []string{termText(r.Name), termText(r.Metric), "> " + strconv.FormatFloat(r.Threshold, 'f', -1, 64), window, strconv.Itoa(r.MinJobs),
					termText(string(r.Severity)), r.Cooldown.String(), strings.Join(channels, ","), enabled}
			}
			return a.print(views, func(w io.Writer) error {
				return cli.Table(w, []string{"NAME", "METRIC", "THRESHOLD", "WINDOW", "MIN JOBS", "SEVERITY", "COOLDOWN", "CHANNELS", "ENABLED"}, rows)
			})
		},
	}
}

func alertsHistoryCmd(a *app) *cobra.Command {
	var rule string
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show what fired, repeated and resolved, newest first, with each channel's delivery",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("rule") && rule == "" {
				return errors.New("--rule is empty: give a rule name, or leave --rule out for every rule's events")
			}
			if limit < 1 || limit > 1000 {
				return fmt.Errorf("--limit %d: must be from 1 to 1000", limit)
			}
			pool, err := a.connectMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			events, err := alert.NewHistory(pool).List(cmd.Context(), rule, limit)
			if err != nil {
				return err
			}
			if rule != "" && len(events) == 0 {
				// No events: a rule that has not fired yet, or a typo. (A
				// deleted rule's events are still listed above.)
				if err := checkRuleExists(cmd.Context(), alert.NewRules(pool), rule); err != nil {
					return err
				}
			}
			rows := make([][]string, len(events))
			for i, e := range events {
				var del []string
				for _, ch := range e.Channels {
					d, ok := e.Delivery[ch]
					if !ok {
						del = append(del, termText(ch)+": pending")
						continue
					}
					del = append(del, termText(ch)+": "+deliveryText(d))
				}
				rows[i] = []string{strconv.FormatInt(e.ID, 10), e.CreatedAt.UTC().Format(time.RFC3339), termText(e.Event), termText(e.Rule), termText(e.Subject),
					termText(string(e.Severity)), termText(e.Message), strings.Join(del, "; ")}
			}
			return a.print(events, func(w io.Writer) error {
				return cli.Table(w, []string{"ID", "AT", "EVENT", "RULE", "SUBJECT", "SEVERITY", "MESSAGE", "DELIVERY"}, rows)
			})
		},
	}
	cmd.Flags().StringVar(&rule, "rule", "", "only this rule's events (a name that is neither a rule nor in the history is an error)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many events (1 to 1000)")
	return cmd
}

// deliveryText is a channel's delivery as the history table shows it:
// "delivered (1 attempt)", "failed (3 attempts)", or, for a delivery that
// failed without an attempt (a channel the pod does not define), or was
// skipped or superseded, its error: "failed (channel pagr is not
// configured in this pod)", "superseded (not sent: a newer event ...)";
// the outcome and error through termText.
func deliveryText(d notify.Delivery) string {
	switch {
	case (d.Attempts == 0 || d.Outcome == notify.OutcomeSuperseded || d.Outcome == notify.OutcomeSkipped) && d.Error != "":
		return fmt.Sprintf("%s (%s)", termText(d.Outcome), termText(d.Error))
	case d.Attempts == 1:
		return fmt.Sprintf("%s (1 attempt)", termText(d.Outcome))
	}
	return fmt.Sprintf("%s (%d attempts)", termText(d.Outcome), d.Attempts)
}

// termText is s as the tables print it: s itself when it is valid UTF-8
// of printable characters (strconv.IsPrint: letters, marks, numbers,
// punctuation, symbols and the ASCII space), else quoted as strconv.Quote
// does ("a\x1b[2Jb"), so a rule, channel, subject or message written by
// hand in SQL cannot send control sequences to the terminal (nor a tab or
// newline that breaks the table).
func termText(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// maxNamesShown is how many rule names an unknown-rule error lists.
const maxNamesShown = 10

// checkRuleExists returns nil when rule is in job_alert_config, else an
// error naming it and the rules there are (when there are at most
// maxNamesShown).
func checkRuleExists(ctx context.Context, rules *alert.Rules, rule string) error {
	_, err := rules.Get(ctx, rule)
	if !errors.Is(err, alert.ErrNoRule) {
		return err
	}
	all, err := rules.List(ctx)
	if err != nil {
		return err
	}
	known := "there are no rules"
	switch {
	case len(all) > maxNamesShown:
		known = fmt.Sprintf("%d rules: see `rebound alerts list`", len(all))
	case len(all) > 0:
		names := make([]string, len(all))
		for i, r := range all {
			names[i] = r.Name
		}
		known = "rules: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("no alert rule named %q and no history under that name (%s)", rule, known)
}

func alertsSetCmd(a *app) *cobra.Command {
	var metric, severity, window, cooldown, channels, configPath string
	var threshold float64
	var minJobs int
	var enabled bool
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create a rule, or change the given settings of one",
		Long: `set creates the rule NAME (--metric, --threshold and --severity required) or
changes only the flags given of an existing one. Creating, the name and the
values given are checked first; then every missing required flag is named. Metrics: failure_rate (percent
per kind, judged with at least --min-jobs finished jobs in --window),
breaker_open, dlq_unresolved, dlq_growth (dead letters in --window),
dlq_oldest_age (seconds). Only failure_rate and dlq_growth have a window:
--window with another metric is refused (alerts list shows their window as -).
Durations: 15m or seconds (900). Rule and channel names: lower-case letters,
digits, '-' and '_', at most 63 characters, starting with a letter or digit.
--channels names channels of the workers' configuration file, comma-separated
("" for none; an empty name among others, as in "a,,b", is refused). --config
(that file) is read and validated as the worker reads it (a file the worker
would refuse is refused, with its message; a ${NAME} secret unset here is not
needed) and each channel must be defined under its alerts.channels, or nothing
changes. Without --config the names are not checked (a note on stderr
says so): a worker whose configuration does not define a channel of an enabled
rule still starts, logs a warning naming the rule and the channel, and records
each notification of the rule through that channel as failed.`,
		Args: exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			defined, err := definedChannels(cmd, configPath)
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			if flags.Changed("channels") && strings.TrimSpace(channels) != "" {
				// "" clears the channels; any other value lists names, none
				// of them empty ("a,,b" or "a," is a typo, not a).
				for c := range strings.SplitSeq(channels, ",") {
					if strings.TrimSpace(c) == "" {
						return fmt.Errorf("invalid --channels %q: an empty channel name: separate names with single commas (\"\" for no channel)", channels)
					}
				}
			}
			ctx := cmd.Context()
			pool, err := a.connectMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			rules := alert.NewRules(pool)
			r, err := rules.Get(ctx, args[0])
			creating := errors.Is(err, alert.ErrNoRule)
			if err != nil && !creating {
				return err
			}
			// The values given are checked before the missing ones are
			// asked for: a missing required flag stands in as a valid
			// placeholder until then.
			var missing []string
			if creating {
				for _, req := range []string{"metric", "threshold", "severity"} {
					if !flags.Changed(req) {
						missing = append(missing, "--"+req)
					}
				}
				r = alert.Rule{Name: args[0], Metric: alert.MetricDLQUnresolved, Severity: alert.SeverityWarning,
					Window: 15 * time.Minute, Cooldown: alert.DefaultCooldown, Enabled: true, Channels: []string{}}
			}
			if flags.Changed("metric") {
				r.Metric = metric
			}
			if flags.Changed("threshold") {
				r.Threshold = threshold
			}
			if flags.Changed("severity") {
				r.Severity = alert.Severity(severity)
			}
			if flags.Changed("min-jobs") {
				r.MinJobs = minJobs
			}
			if flags.Changed("enabled") {
				r.Enabled = enabled
			}
			// A window for a metric without one is refused as that, whatever
			// its value (saved, it would be ignored: the metric is a state
			// now); the placeholder metric of a rule being created without
			// --metric does not count.
			if flags.Changed("window") && (!creating || flags.Changed("metric")) && slices.Contains(alert.Metrics, r.Metric) && !alert.UsesWindow(r.Metric) {
				return fmt.Errorf("invalid --window %q: metric %s has no window (only failure_rate and dlq_growth use one)", window, r.Metric)
			}
			if flags.Changed("window") {
				if r.Window, err = alert.ParseSeconds(window); err != nil {
					return fmt.Errorf("invalid --window %w", err)
				}
			}
			if flags.Changed("cooldown") {
				if r.Cooldown, err = alert.ParseSeconds(cooldown); err != nil {
					return fmt.Errorf("invalid --cooldown %w", err)
				}
			}
			if flags.Changed("channels") {
				r.Channels = []string{}
				for c := range strings.SplitSeq(channels, ",") {
					if c = strings.TrimSpace(c); c != "" {
						r.Channels = append(r.Channels, c)
					}
				}
			}
			if err := r.Validate(); err != nil {
				// A value this command was given is refused as its flag; one
				// the rule already had (a threshold of 500 that a new
				// --metric failure_rate makes wrong) in the rule's terms.
				fe, ok := errors.AsType[*alert.FieldError](err)
				if ok {
					if flag := strings.ReplaceAll(fe.Field, "_", "-"); fe.Field != "name" && flags.Changed(flag) {
						return fmt.Errorf("invalid --%s %q: %s", flag, flags.Lookup(flag).Value.String(), fe.Problem)
					}
				}
				if len(missing) == 0 || (ok && fe.Field == "name") {
					return fmt.Errorf("rule %q: %w", r.Name, err)
				}
			}
			if len(missing) > 0 {
				verb := "is"
				if len(missing) > 1 {
					verb = "are"
				}
				return fmt.Errorf("rule %q does not exist: %s %s required to create it", args[0], andList(missing), verb)
			}
			if err := checkChannels(configPath, defined, r); err != nil {
				return err
			}
			if err := rules.Put(ctx, r); err != nil {
				return err
			}
			if configPath == "" && flags.Changed("channels") {
				noteChannelsUnchecked(cmd, r.Channels)
			}
			return a.print(ruleView{Rule: r, WindowSeconds: r.WindowSeconds(), CooldownSeconds: r.CooldownSeconds()}, func(w io.Writer) error {
				verb := "changed"
				if creating {
					verb = "created"
				}
				over := "" // a metric without a window is a state now
				if alert.UsesWindow(r.Metric) {
					over = " over " + r.Window.String()
				}
				_, err := fmt.Fprintf(w, "rule %s %s: %s > %g%s, %s, cooldown %s, channels [%s], enabled %t\n",
					r.Name, verb, r.Metric, r.Threshold, over, r.Severity, r.Cooldown, strings.Join(r.Channels, ","), r.Enabled)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&metric, "metric", "", "failure_rate, breaker_open, dlq_unresolved, dlq_growth or dlq_oldest_age")
	f.Float64Var(&threshold, "threshold", 0, "fires while the value is above this (percent, count or seconds)")
	f.StringVar(&severity, "severity", "", "warning, error or critical")
	f.StringVar(&window, "window", "", "failure_rate and dlq_growth: window of the value (1m to 720h; default 15m)")
	f.IntVar(&minJobs, "min-jobs", 0, "failure_rate: least finished jobs in the window")
	f.StringVar(&cooldown, "cooldown", "", "quiet time before a still-firing alert repeats (0 to 720h; default 1h)")
	f.StringVar(&channels, "channels", "", "comma-separated channel names")
	f.StringVar(&configPath, "config", "", "the workers' YAML configuration file, validated as the worker does: the rule's channels must be defined under its alerts.channels (its ${NAME} secrets need not be set here)")
	f.BoolVar(&enabled, "enabled", true, "whether the rule is evaluated")
	return cmd
}

func alertsEnableCmd(a *app, enable bool) *cobra.Command {
	var configPath string
	use, short := "enable NAME", "Enable a rule"
	long := `enable makes the rule NAME evaluated again. --config (the workers'
configuration file) is read and validated as the worker reads it, and each of
the rule's channels must be defined under its alerts.channels, or nothing
changes. Without --config the rule's channels are not checked (a note on stderr
says so, as alerts set does).`
	if !enable {
		use, short, long = "disable NAME", "Disable a rule (what it fired resolves at the next evaluation)", ""
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			defined, err := definedChannels(cmd, configPath)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			pool, err := a.connectMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			rules := alert.NewRules(pool)
			var r alert.Rule
			if enable {
				// Its channels, to check or to note unchecked.
				if r, err = rules.Get(ctx, args[0]); err != nil && !errors.Is(err, alert.ErrNoRule) {
					return err
				}
				if err == nil {
					if err := checkChannels(configPath, defined, r); err != nil {
						return err
					}
				}
			}
			if err := rules.SetEnabled(ctx, args[0], enable); err != nil {
				if errors.Is(err, alert.ErrNoRule) {
					return fmt.Errorf("no alert rule %q (see `rebound alerts list`)", args[0])
				}
				return err
			}
			if enable && configPath == "" {
				noteChannelsUnchecked(cmd, r.Channels)
			}
			state := map[bool]string{true: "enabled", false: "disabled"}[enable]
			return a.print(map[string]any{"name": args[0], "enabled": enable}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "rule %s %s\n", args[0], state)
				return err
			})
		},
	}
	if enable {
		cmd.Flags().StringVar(&configPath, "config", "", "the workers' YAML configuration file, validated as the worker does: the rule's channels must be defined under its alerts.channels (its ${NAME} secrets need not be set here)")
	}
	return cmd
}

// definedChannels returns the channels the workers' configuration file
// configPath defines under alerts.channels, sorted; nil when configPath is
// "" and --config was not given. The file is read and validated as the
// worker reads it (but its ${NAME} secrets need not be set here), so a
// file the worker would refuse is refused here too, with the worker's
// message. An empty --config is an error.
func definedChannels(cmd *cobra.Command, configPath string) ([]string, error) {
	if cmd.Flags().Changed("config") && configPath == "" {
		return nil, errors.New("--config is empty: give the workers' configuration file, or leave --config out")
	}
	if configPath == "" {
		return nil, nil
	}
	settings, err := config.LoadWithoutSecrets(configPath)
	if err != nil {
		return nil, config.NameSource(err, cli.FlagRef(cmd, "config"))
	}
	names := slices.Sorted(maps.Keys(settings.Alerts.Channels))
	if names == nil {
		names = []string{}
	}
	return names, nil
}

// checkChannels returns an error naming the first channel of r that
// defined (definedChannels of configPath) lacks, ending "nothing changed";
// nil when configPath is "" (nothing to check against). The rule is checked
// whether it is enabled or not: --config asks.
func checkChannels(configPath string, defined []string, r alert.Rule) error {
	if configPath == "" {
		return nil
	}
	set := make(map[string]bool, len(defined))
	for _, name := range defined {
		set[name] = true
	}
	check := r
	check.Enabled = true
	if unknown := alert.UnknownChannels([]alert.Rule{check}, set); len(unknown) > 0 {
		uc := unknown[0]
		have := "it defines none"
		if len(defined) > 0 {
			have = "it defines " + strings.Join(defined, ", ")
		}
		return fmt.Errorf("rule %q: channel %q is not defined under alerts.channels in %s (%s); nothing changed", r.Name, uc.Channel, configPath, have)
	}
	return nil
}

// noteChannelsUnchecked writes, when channels is not empty, one note on stderr
// that they were not checked against a workers' configuration file (no
// --config): "PROGRAM: note: channel a was not checked (no --config): it
// must be defined ..." or "channels a,b were ... each must be ...". Only
// the workers' files know their channels.
func noteChannelsUnchecked(cmd *cobra.Command, channels []string) {
	if len(channels) == 0 {
		return
	}
	what, each := "channel "+termText(channels[0])+" was", "it"
	if len(channels) > 1 {
		quoted := make([]string, len(channels))
		for i, c := range channels {
			quoted[i] = termText(c)
		}
		what, each = "channels "+strings.Join(quoted, ",")+" were", "each"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: note: %s not checked (no --config): %s must be defined under alerts.channels in the workers' YAML, or its notifications fail; check with --config FILE\n", cmd.Root().Name(), what, each)
}

func alertsTestCmd(a *app) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "test CHANNEL",
		Short: "Send a sample notification through a channel of the configuration file, now",
		Long: `test sends a sample notification through CHANNEL, as defined in the workers'
configuration file (--config; ${NAME} references read from the environment), and
records it in the history as event "test". It fails (exit code 1) when the
channel does not accept it.`,
		Args: exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return errors.New("--config is required: the workers' configuration file that defines the channel")
			}
			settings, err := config.Load(configPath)
			if err != nil {
				return config.NameSource(err, cli.FlagRef(cmd, "config"))
			}
			ch, ok := settings.Alerts.Channels[args[0]]
			if !ok {
				return fmt.Errorf("no channel %q in %s (alerts.channels)", args[0], configPath)
			}
			ctx := cmd.Context()
			pool, err := a.connectMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			h := alert.NewHistory(pool)
			id, err := h.RecordTest(ctx, args[0], time.Now().UTC())
			if err != nil {
				return err
			}
			msg, err := h.Message(ctx, id, settings.Alerts.Link)
			if err != nil {
				return err
			}
			sendErr := notify.Send(ctx, &http.Client{Timeout: 15 * time.Second}, args[0], &ch, msg)
			d := notify.Delivery{Outcome: notify.OutcomeDelivered, Attempts: 1, At: time.Now().UTC()}
			if sendErr != nil {
				d.Outcome, d.Error = notify.OutcomeFailed, redact.Text(sendErr.Error())
			}
			if err := h.RecordDelivery(ctx, id, args[0], d); err != nil {
				return err
			}
			if sendErr != nil {
				return fmt.Errorf("channel %s did not accept the test notification: %s", args[0], d.Error)
			}
			return a.print(map[string]any{"channel": args[0], "history_id": id, "outcome": d.Outcome}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "test notification delivered through %s (history %d)\n", args[0], id)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the workers' YAML configuration file (alerts.channels)")
	return cmd
}

func exactlyOneName(_ *cobra.Command, args []string) error {
	switch len(args) {
	case 0:
		return errors.New("missing NAME")
	case 1:
		if args[0] == "" {
			return errors.New("NAME is empty")
		}
		return nil
	}
	return fmt.Errorf("one NAME expected, got %d arguments", len(args))
}

// andList joins items as people list them: "a", "a and b", "a, b and c".
func andList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
