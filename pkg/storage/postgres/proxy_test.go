package postgres

import (
	"bytes"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultProxy is a TCP proxy between stores and PostgreSQL that a test
// turns bad: freeze stops moving bytes but keeps every connection open (a
// paused VM, a stuck middlebox: TCP sees nothing wrong), blackhole reads
// and drops whatever arrives (a partition where sends still succeed), and
// cut resets every connection. New connections made while frozen or
// blackholed hang the same way.
type faultProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  proxyMode
	cond  *sync.Cond
	conns map[net.Conn]struct{}

	// toClient counts bytes moved from PostgreSQL to clients.
	toClient atomic.Int64
	// stats are every connection's, closed ones included.
	stats []*proxyConnStats
}

// proxyConnStats tell what one connection carried: the start of what the
// client sent (which names the statements it prepared) and how many bytes
// came back.
type proxyConnStats struct {
	mu       sync.Mutex
	sent     []byte
	toClient atomic.Int64
}

const proxySentKept = 256 << 10

func (c *proxyConnStats) addSent(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := proxySentKept - len(c.sent); room > 0 {
		c.sent = append(c.sent, b[:min(room, len(b))]...)
	}
}

// toClientOf sums the bytes sent back on connections whose client sent text.
func (p *faultProxy) toClientOf(text string) int64 {
	p.mu.Lock()
	stats := append([]*proxyConnStats(nil), p.stats...)
	p.mu.Unlock()
	var n int64
	for _, c := range stats {
		c.mu.Lock()
		match := bytes.Contains(c.sent, []byte(text))
		c.mu.Unlock()
		if match {
			n += c.toClient.Load()
		}
	}
	return n
}

type proxyMode int

const (
	proxyPass proxyMode = iota
	proxyFreeze
	proxyBlackhole
)

// startFaultProxy proxies to the server dbURL names and returns the proxy
// and dbURL rewritten to go through it.
func startFaultProxy(t testing.TB, dbURL string) (*faultProxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setMode(proxyPass)
		p.cut()
	})
	u.Host = ln.Addr().String()
	q := u.Query()
	// pgx's connect timeout is the only bound on a dial through a frozen proxy
	// when a caller has no deadline; the store's own calls all have one.
	q.Set("connect_timeout", "5")
	u.RawQuery = q.Encode()
	return p, u.String()
}

func (p *faultProxy) setMode(m proxyMode) {
	p.mu.Lock()
	p.mode = m
	p.cond.Broadcast()
	p.mu.Unlock()
}

// cut closes every connection now, with a reset rather than a FIN.
func (p *faultProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
		delete(p.conns, c)
	}
	return n
}

func (p *faultProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *faultProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = struct{}{}
}

func (p *faultProxy) serve(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.track(client)
	p.track(server)
	st := &proxyConnStats{}
	p.mu.Lock()
	p.stats = append(p.stats, st)
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() {
		p.pipe(server, client, func(b []byte) { st.addSent(b) })
		done <- struct{}{}
	}()
	go func() {
		p.pipe(client, server, func(b []byte) {
			p.toClient.Add(int64(len(b)))
			st.toClient.Add(int64(len(b)))
		})
		done <- struct{}{}
	}()
	<-done
	_ = client.Close()
	_ = server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// pipe copies src to dst, obeying the mode before every write, and tells
// moved of every chunk it delivers.
func (p *faultProxy) pipe(dst, src net.Conn, moved func([]byte)) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.mode == proxyFreeze {
				p.cond.Wait()
			}
			drop := p.mode == proxyBlackhole
			p.mu.Unlock()
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
				moved(buf[:n])
			}
		}
		if err != nil {
			// EOF, a reset, or the other side closed by cut or serve.
			return
		}
	}
}
