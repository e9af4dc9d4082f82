// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 because the
// etcd repository's own main package lives in a module that is not meant to be required.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
