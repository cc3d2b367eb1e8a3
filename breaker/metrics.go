package breaker

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxMetricKeys caps the number of distinct key label values the breaker
// exports. Keys are operator-chosen (URL hosts, job kinds), so the set is
// unbounded in principle; past the cap, further keys are exported under the
// label value OtherKey (for rebound_breaker_state: the worst state among
// them). The cap counts keys in the order this pod first sees them (a call,
// a job's key, or a row read from the database).
const MaxMetricKeys = 1000

// OtherKey is the key label of every key past MaxMetricKeys.
const OtherKey = "_other"

// Metrics are the breaker's Prometheus metrics for one pod:
//
//	rebound_breaker_state{key}                       gauge: 0 closed, 1 half-open, 2 open (this pod's view)
//	rebound_breaker_open{key}                        gauge: 1 while the breaker counts as open (CountsAsOpen), else 0
//	rebound_breaker_transitions_total{key,from,to}   transitions this pod made (statements it ran)
//	rebound_breaker_short_circuited_total{key}       calls this pod refused
//	rebound_breaker_stale_results_total{key}         outcomes that belonged to an older generation and changed nothing
//
// Every key's series exist at 0 from the moment this pod's breaker first
// holds a view of the key (a call, a job's key, or a row read from the
// database), before its first increment: 6 series per key, at most
// MaxMetricKeys+1 keys.
//
// Transitions made by hand (rebound breaker reset|open, SQL) are not counted
// by any pod; the state gauge shows them. A nil *Metrics records nothing.
type Metrics struct {
	transitions   *prometheus.CounterVec
	shortCircuits *prometheus.CounterVec
	staleResults  *prometheus.CounterVec
	stateDesc     *prometheus.Desc
	openDesc      *prometheus.Desc
	mu            sync.Mutex
	keys          map[string]struct{}
	breakers      []*Breaker
}

// NewMetrics creates the breaker's metrics and registers them on reg. It
// returns the registration's error (e.g. the names are already registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rebound_breaker_transitions_total",
			Help: "Circuit breaker transitions made by this pod, by operation key and from/to state (closed, half_open, open).",
		}, []string{"key", "from", "to"}),
		shortCircuits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rebound_breaker_short_circuited_total",
			Help: "Calls and jobs this pod refused (or parked) because the operation key's breaker was open or busy probing.",
		}, []string{"key"}),
		staleResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rebound_breaker_stale_results_total",
			Help: "Call outcomes that belonged to an older breaker generation and changed nothing.",
		}, []string{"key"}),
		stateDesc: prometheus.NewDesc("rebound_breaker_state",
			"State of the operation key's circuit breaker as this pod sees it: 0 closed, 1 half-open, 2 open.",
			[]string{"key"}, nil),
		openDesc: prometheus.NewDesc("rebound_breaker_open",
			"1 while the operation key's circuit breaker counts as open for health and alerts, as this pod sees it: half-open, open with its probe not yet due, or open by failures with its probe due for less than that open's timeout (at least 1m); else 0.",
			[]string{"key"}, nil),
		keys: map[string]struct{}{},
	}
	for _, c := range []prometheus.Collector{m.transitions, m.shortCircuits, m.staleResults, stateCollector{m}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) attach(b *Breaker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.breakers = append(m.breakers, b)
}

// label returns key, or OtherKey once MaxMetricKeys other keys are known.
func (m *Metrics) label(key string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.labelLocked(key)
}

func (m *Metrics) labelLocked(key string) string {
	if _, ok := m.keys[key]; ok {
		return key
	}
	if len(m.keys) >= MaxMetricKeys {
		return OtherKey
	}
	m.keys[key] = struct{}{}
	return key
}

// transitions are the transitions a pod makes by itself, the from and to
// label values of the series [Metrics.seen] creates.
var transitions = [][2]State{
	{StateClosed, StateOpen}, {StateOpen, StateHalfOpen}, {StateHalfOpen, StateClosed}, {StateHalfOpen, StateOpen},
}

// seen creates key's counter series at 0 (the four automatic transitions,
// short-circuited, stale results) the first time this pod's breaker holds
// a view of key, so Prometheus's increase() counts the key's first
// transition: a series' first sample is not counted. Keys past
// MaxMetricKeys share OtherKey's series.
func (m *Metrics) seen(key string) {
	if m == nil {
		return
	}
	l := m.label(key)
	for _, t := range transitions {
		m.transitions.WithLabelValues(l, t[0].String(), t[1].String())
	}
	m.shortCircuits.WithLabelValues(l)
	m.staleResults.WithLabelValues(l)
}

func (m *Metrics) transition(key string, from, to State) {
	if m == nil || from == to {
		return
	}
	m.transitions.WithLabelValues(m.label(key), from.String(), to.String()).Inc()
}

func (m *Metrics) shortCircuited(key string) {
	if m == nil {
		return
	}
	m.shortCircuits.WithLabelValues(m.label(key)).Inc()
}

func (m *Metrics) stale(key string) { m.staleN(key, 1) }

func (m *Metrics) staleN(key string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.staleResults.WithLabelValues(m.label(key)).Add(float64(n))
}

// stateCollector exports rebound_breaker_state and rebound_breaker_open
// from the attached breakers' local views at scrape time.
type stateCollector struct{ m *Metrics }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.stateDesc
	ch <- c.m.openDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.Lock()
	breakers := m.breakers
	m.mu.Unlock()
	states := map[string]State{}
	open := map[string]bool{}
	for _, b := range breakers {
		dbNow := b.dbNow()
		var keys []string
		b.views.Range(func(k, val any) bool {
			if val.(*keyView).snap.Load().exists {
				keys = append(keys, k.(string))
			}
			return true
		})
		sort.Strings(keys)
		m.mu.Lock()
		for _, k := range keys {
			l := m.labelLocked(k)
			snap := absent
			if v, ok := b.views.Load(k); ok {
				snap = v.(*keyView).snap.Load()
			}
			if old, ok := states[l]; !ok || snap.state > old {
				states[l] = snap.state
			}
			open[l] = open[l] || CountsAsOpen(snap.state, snap.openedAt, snap.nextProbeAt, snap.changedAt, dbNow)
		}
		m.mu.Unlock()
	}
	for l, s := range states {
		ch <- prometheus.MustNewConstMetric(m.stateDesc, prometheus.GaugeValue, float64(s), l)
		v := 0.0
		if open[l] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(m.openDesc, prometheus.GaugeValue, v, l)
	}
}
