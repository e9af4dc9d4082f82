package postgres

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
)

// queries.sql holds every statement the backend sends, by name, so the SQL
// is read and reviewed in one place beside schema.sql.
//
//go:embed queries.sql
var queriesSQL string

var queryHeader = regexp.MustCompile(`(?m)^-- name: ([a-z0-9-]+)\s*$`)

// namedQueries splits queries.sql into its named statements.
func namedQueries(src string) (map[string]string, error) {
	locs := queryHeader.FindAllStringSubmatchIndex(src, -1)
	out := make(map[string]string, len(locs))
	for i, loc := range locs {
		name := src[loc[2]:loc[3]]
		end := len(src)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("queries.sql: %q is defined twice", name)
		}
		// Drop the comment lines that describe the statement.
		var body []string
		for _, line := range strings.Split(src[loc[1]:end], "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "--") {
				body = append(body, line)
			}
		}
		sql := strings.TrimSpace(strings.Join(body, "\n"))
		if sql == "" {
			return nil, fmt.Errorf("queries.sql: %q is empty", name)
		}
		out[name] = sql
	}
	return out, nil
}

var queries = func() map[string]string {
	q, err := namedQueries(queriesSQL)
	if err != nil {
		panic(err)
	}
	return q
}()

// query returns the statement called name. A name missing from queries.sql
// panics when the package initialises (every call is a package-level
// variable below), so no test run can miss it.
func query(name string) string {
	q, ok := queries[name]
	if !ok {
		panic(fmt.Sprintf("queries.sql has no statement %q", name))
	}
	return q
}

var (
	sqlMigrationLock      = query("migration-lock")
	sqlMigrationUnlock    = query("migration-unlock")
	sqlMigrationTable     = query("migration-table")
	sqlMigrationVersion   = query("migration-version")
	sqlMigrationRecord    = query("migration-record")
	sqlCurrentRevision    = query("current-revision")
	sqlRevisions          = query("revisions")
	sqlGet                = query("get")
	sqlRangePage          = query("range-page")
	sqlRangeCount         = query("range-count")
	sqlEventsPage         = query("events-page")
	sqlCommitWrites       = query("commit-writes")
	sqlClock              = query("clock")
	sqlExpiredKeys        = query("expired-keys")
	sqlNotify             = query("notify")
	sqlListen             = query("listen")
	sqlPing               = query("ping")
	sqlLocalStmtTimeout   = query("local-statement-timeout")
	sqlCompactionLock     = query("compaction-lock")
	sqlCompactSuperseded  = query("compact-superseded")
	sqlCompactDeletionAt  = query("compact-deletion-at")
	sqlCompactionSet      = query("compaction-set")
	sqlCompactionRevision = query("compaction-revision")
	sqlStats              = query("stats")
	sqlAutovacuumOff      = query("autovacuum-off")
	sqlVacuum             = query("vacuum")
	sqlStaleStatistics    = query("stale-statistics")
	sqlAnalyzeKV          = query("analyze-kv")
	sqlAnalyzeKVLog       = query("analyze-kv-log")
	sqlSessionStmtTimeout = query("session-statement-timeout")
	sqlResetStmtTimeout   = query("reset-statement-timeout")
)
