// Package bench holds the storage benchmarks of `make bench`: the PostgreSQL
// store beside the upstream etcd3 store (over an embedded etcd) and a plain
// pgx INSERT loop, with a summary of ratios and goals printed at the end of
// the run. Everything is in _test.go files; `go test ./...` compiles it but
// runs no benchmark.
package bench
