package main

// The tests' network helpers, run by the tests inside a test host's network
// namespace (nsenter --net), never inside a container:
//
//	forward SOCKET TARGET   listens on a unix socket and connects each client to TARGET
//	                        (host:port) from inside the namespace, so a test on the
//	                        machine reaches an address only that namespace can
//	probe ADDR...           prints "ADDR open" or "ADDR closed" for each host:port
//	sni ROUTES LISTEN       a TCP stand-in for Envoy's :443 passthrough listener, for
//	                        the pods' own calls through the ingress (forward auth):
//	                        it reads the SNI of each ClientHello, picks a route as the
//	                        rendered filter chains describe (destination prefix, server
//	                        name, source prefix), and opens the route's upstream with a
//	                        PROXY v2 header, as the rendered cluster does. It is not
//	                        Envoy: only what the tests' routes need.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"
)

func forward(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: forward SOCKET HOST:PORT")
		return 2
	}
	os.Remove(args[0])
	l, err := net.Listen("unix", args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			up, err := net.DialTimeout("tcp", args[1], 5*time.Second)
			if err != nil {
				return
			}
			pipe(c, up)
		}()
	}
}

func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
	b.Close()
}

func probe(args []string) int {
	for _, addr := range args {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			fmt.Println(addr, "closed")
			continue
		}
		c.Close()
		fmt.Println(addr, "open")
	}
	return 0
}

// Route is one rendered filter chain with its cluster's endpoint.
type Route struct {
	Name         string   `json:"name"`
	ServerNames  []string `json:"serverNames"`
	Destinations []string `json:"destinations"`
	Sources      []string `json:"sources"`
	Upstream     string   `json:"upstream"`
	ProxyV2      bool     `json:"proxyProtocol"`
}

func sni(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sni ROUTES.json LISTEN")
		return 2
	}
	raw, err := os.ReadFile(args[0])
	var routes []Route
	if err == nil {
		err = json.Unmarshal(raw, &routes)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := net.Listen("tcp", args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		go serveSNI(c, routes)
	}
}

func serveSNI(c net.Conn, routes []Route) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	name, err := peekSNI(br)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sni:", err)
		return
	}
	c.SetReadDeadline(time.Time{})
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	dst := c.LocalAddr().(*net.TCPAddr).AddrPort()
	r := pick(routes, name, src.Addr().Unmap(), dst.Addr().Unmap())
	if r == nil || r.Upstream == "" {
		fmt.Fprintf(os.Stderr, "sni: no open chain for %q from %s to %s: closed\n", name, src, dst)
		return
	}
	up, err := net.DialTimeout("tcp", r.Upstream, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sni:", err)
		return
	}
	if r.ProxyV2 {
		up.Write(proxyV2(src, dst))
	}
	// The reader still holds the ClientHello it peeked at.
	pipe(readerConn{c, br}, up)
}

type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c readerConn) CloseWrite() error {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return nil
}

// pick follows Envoy's filter chain match order: the most specific destination
// prefix, then the server name, then the most specific source prefix.
func pick(routes []Route, name string, src, dst netip.Addr) *Route {
	best := func(prefixes []string, a netip.Addr) int {
		if len(prefixes) == 0 {
			return 0
		}
		bits := -1
		for _, p := range prefixes {
			if pf, err := netip.ParsePrefix(p); err == nil && pf.Contains(a) && pf.Bits()+1 > bits {
				bits = pf.Bits() + 1
			}
		}
		return bits
	}
	stage := func(in []*Route, score func(*Route) int) []*Route {
		top, out := -1, []*Route(nil)
		for _, r := range in {
			s := score(r)
			if s < 0 {
				continue
			}
			if s > top {
				top, out = s, nil
			}
			if s == top {
				out = append(out, r)
			}
		}
		return out
	}
	all := make([]*Route, len(routes))
	for i := range routes {
		all[i] = &routes[i]
	}
	c := stage(all, func(r *Route) int { return best(r.Destinations, dst) })
	c = stage(c, func(r *Route) int {
		for _, n := range r.ServerNames {
			if n == name {
				return 1
			}
		}
		if len(r.ServerNames) == 0 {
			return 0
		}
		return -1
	})
	c = stage(c, func(r *Route) int { return best(r.Sources, src) })
	if len(c) == 0 {
		return nil
	}
	return c[0]
}

func proxyV2(src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21, 0x11, 0, 12)
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	return b
}

// peekSNI reads the TLS ClientHello's server_name without consuming it.
func peekSNI(br *bufio.Reader) (string, error) {
	hdr, err := br.Peek(5)
	if err != nil {
		return "", err
	}
	if hdr[0] != 0x16 {
		return "", errors.New("not a TLS handshake")
	}
	n := int(binary.BigEndian.Uint16(hdr[3:5]))
	rec, err := br.Peek(5 + n)
	if err != nil {
		return "", err
	}
	p := rec[5:]
	if len(p) < 4 || p[0] != 1 {
		return "", errors.New("not a ClientHello")
	}
	p = p[4:]
	skip := func(k int) bool {
		if len(p) < k {
			return false
		}
		p = p[k:]
		return true
	}
	vec := func(lenBytes int) bool {
		if len(p) < lenBytes {
			return false
		}
		l := 0
		for i := 0; i < lenBytes; i++ {
			l = l<<8 | int(p[i])
		}
		return skip(lenBytes + l)
	}
	if !skip(2+32) || !vec(1) || !vec(2) || !vec(1) || len(p) < 2 {
		return "", errors.New("short ClientHello")
	}
	p = p[2:]
	for len(p) >= 4 {
		typ, l := binary.BigEndian.Uint16(p), int(binary.BigEndian.Uint16(p[2:]))
		p = p[4:]
		if len(p) < l {
			break
		}
		if typ == 0 && l >= 5 {
			nl := int(binary.BigEndian.Uint16(p[3:5]))
			if 5+nl <= l {
				return string(p[5 : 5+nl]), nil
			}
		}
		p = p[l:]
	}
	return "", errors.New("no server_name")
}
