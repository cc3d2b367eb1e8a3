package deadletter

// StatsGroupsQuery exposes the query of Store.Stats' groups to tests, which
// EXPLAIN it.
var StatsGroupsQuery = statsGroupsQuery
