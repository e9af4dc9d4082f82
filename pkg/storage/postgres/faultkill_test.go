package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

// killedReplicaEnv carries the database URL to the child process of
// TestFaultKilledReplica.
const killedReplicaEnv = "POSTGRES_STORE_KILLED_REPLICA_DB"

// TestFaultKilledReplica runs a third replica in a child process (this test
// binary again, as TestKilledReplicaChild) that writes as fast as it can
// and reports every write acknowledged to it, and SIGKILLs it just as its
// committer sends a batch, three times, while the two replicas of a fault
// cluster write and watch. The others must go on committing (the dead
// process held no lock across a round trip), every write acknowledged to
// the dead process must be there, and the watchers must see every revision
// once and in order.
func TestFaultKilledReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	dbURL := pgtest.NewDatabase(t)
	c := newFaultCluster(t, dbURL, faultTestOptions())
	c.start(ctx, 4)
	c.progress(10, time.Minute, "before the child starts")

	for round := range 3 {
		acked := runKilledReplica(ctx, t, dbURL, round, c)
		c.progress(10, time.Minute, fmt.Sprintf("after kill %d", round))
		// Every write acknowledged to the dead process is there: a key
		// holds its last acknowledged version, or the one after it that
		// was in flight when the process died.
		for key, seq := range acked {
			got := &example.Pod{}
			if err := c.replicas[round%2].s.Get(ctx, key, storage.GetOptions{}, got); err != nil {
				t.Errorf("%s: seq %d was acknowledged to the killed replica, Get fails: %v", key, seq, err)
				continue
			}
			if s, _ := strconv.Atoi(got.Labels["seq"]); s != seq && s != seq+1 {
				t.Errorf("%s: seq %d was acknowledged to the killed replica, the key holds seq %q", key, seq, got.Labels["seq"])
			}
		}
		t.Logf("kill %d: %d keys acknowledged to the killed replica are intact", round, len(acked))
	}
	c.verify(ctx)
}

// runKilledReplica starts the child, waits until it has acknowledged some
// writes, kills it as it sends its next batch, and returns the last seq
// acknowledged per key. Acknowledged pod writes are added to c's record of
// committed writes, so the watchers are held to delivering them.
func runKilledReplica(ctx context.Context, t *testing.T, dbURL string, round int, c *faultCluster) map[string]int {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^TestKilledReplicaChild$", "-test.timeout=3m")
	cmd.Env = append(os.Environ(), killedReplicaEnv+"="+dbURL, "POSTGRES_STORE_KILLED_REPLICA_ROUND="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int{}
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "ack":
			seq, _ := strconv.Atoi(f[2])
			rev, _ := strconv.ParseInt(f[3], 10, 64)
			acked[f[1]] = seq
			c.mu.Lock()
			c.podWrites[rev] = f[1]
			c.mu.Unlock()
		case len(f) == 2 && f[0] == "batch" && len(acked) >= 40 && !killed:
			// The committer is sending a batch right now.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("the child replica ended before it was killed (%v); its log:\n%s", err, tail(stderr.String(), 4000))
	}
	return acked
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestKilledReplicaChild is the replica TestFaultKilledReplica kills; it
// does nothing unless run by it. It prints "batch <writes>" as its committer
// sends each batch and "ack <key> <seq> <rev>" for every write
// acknowledged, until it is killed.
func TestKilledReplicaChild(t *testing.T) {
	url := os.Getenv(killedReplicaEnv)
	if url == "" {
		t.Skip("the child process of TestFaultKilledReplica")
	}
	round := os.Getenv("POSTGRES_STORE_KILLED_REPLICA_ROUND")
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	opts := faultTestOptions()
	opts.hooks = &testHooks{beforeCommit: func(n int) { say("batch %d", n) }}
	b := newBackendAt(t, url, opts)
	s := newPodStore(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns := fmt.Sprintf("killed-%s-%d", round, g)
			for j := 0; ctx.Err() == nil; j++ {
				name := fmt.Sprintf("pod-%d", j)
				key := podKey(ns, name)
				for seq := 0; seq < 3 && ctx.Err() == nil; {
					out := &example.Pod{}
					labels := map[string]string{"seq": strconv.Itoa(seq)}
					var err error
					if seq == 0 {
						err = s.Create(ctx, key, &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}, out, 0)
					} else {
						err = s.GuaranteedUpdate(ctx, key, out, false, nil, func(in runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
							p := in.(*example.Pod).DeepCopy()
							p.Labels = labels
							return p, nil, nil
						}, nil)
					}
					if err != nil {
						// Nothing else writes these keys and nothing fails here
						// before the kill; stop rather than guess.
						t.Errorf("%s seq %d: %v", key, seq, err)
						return
					}
					say("ack %s %d %s", key, seq, out.ResourceVersion)
					seq++
				}
			}
		}()
	}
	wg.Wait()
}
