package main

import (
	"fmt"
	"net"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
)

// checkSet runs the cross-resource checks Envoy does when it accepts a
// listener or cluster, which no single message's PGV rules can express. Each
// mirrors an error Envoy gives at load time; the message says which.
func (c *checker) checkSet(s *configSet) {
	listenerNames := map[string]loc{}
	boundAddrs := map[string]string{}
	for _, l := range s.listeners {
		if n := l.msg.GetName(); n != "" {
			if prev, dup := listenerNames[n]; dup {
				c.errorf(l.loc, "name", "duplicate listener name %q (also in %s)", n, prev)
			} else {
				listenerNames[n] = l.loc
			}
		}
		if sa := l.msg.GetAddress().GetSocketAddress(); sa != nil {
			if sa.GetResolverName() == "" && net.ParseIP(sa.GetAddress()) == nil {
				c.errorf(l.loc, "address.socket_address.address", "%q is not an IP address (Envoy: malformed IP address)", sa.GetAddress())
			}
			// Two listeners cannot bind the same address; port 0 and
			// bind_to_port: false listeners never bind.
			bind := l.msg.GetBindToPort() == nil || l.msg.GetBindToPort().GetValue()
			if sa.GetPortValue() != 0 && bind {
				key := fmt.Sprintf("%s %s", sa.GetProtocol(), net.JoinHostPort(sa.GetAddress(), fmt.Sprint(sa.GetPortValue())))
				if prev, dup := boundAddrs[key]; dup {
					c.errorf(l.loc, "address", "listener %q binds %s, as listener %q does", l.msg.GetName(), key, prev)
				} else {
					boundAddrs[key] = l.msg.GetName()
				}
			}
		}
		c.checkFilterChains(l)
	}

	clusterNames := map[string]loc{}
	for _, cl := range s.clusters {
		if n := cl.msg.GetName(); n != "" {
			if prev, dup := clusterNames[n]; dup {
				c.errorf(cl.loc, "name", "duplicate cluster name %q (also in %s)", n, prev)
			} else {
				clusterNames[n] = cl.loc
			}
		}
		c.checkStaticEndpoints(cl)
	}

	if !s.clustersKnown {
		return
	}
	for _, r := range s.refs {
		if _, ok := clusterNames[r.name]; !ok {
			c.errorf(r.loc, r.path, "cluster %q is not defined (no static or CDS cluster has that name)", r.name)
		}
	}
}

// checkFilterChains mirrors Envoy's filter chain matching rules: server_names
// allow only exact names and a leading "*." wildcard, and no two chains of a
// listener may match the same thing ("multiple filter chains with the same
// matching rules are defined"). Chains are compared on their whole
// filter_chain_match with server_names taken out and then per server name;
// Envoy's real check also catches partially overlapping lists, this one only
// identical ones, which is what a renderer that sorts and dedups produces.
func (c *checker) checkFilterChains(l listenerRes) {
	if l.msg.GetFilterChainMatcher() != nil {
		return // filter_chain_match is ignored when a matcher is set.
	}
	type chainKey struct{ match, serverName string }
	seen := map[chainKey]int{}
	for i, fc := range l.msg.GetFilterChains() {
		match := &listenerv3.FilterChainMatch{}
		if fc.GetFilterChainMatch() != nil {
			match = proto.Clone(fc.GetFilterChainMatch()).(*listenerv3.FilterChainMatch)
		}
		names := match.ServerNames
		match.ServerNames = nil
		rest, err := proto.MarshalOptions{Deterministic: true}.Marshal(match)
		if err != nil {
			c.errorf(l.loc, fmt.Sprintf("filter_chains[%d].filter_chain_match", i), "%v", err)
			continue
		}
		for j, n := range names {
			if strings.Contains(n, "*") && !(strings.HasPrefix(n, "*.") && strings.Count(n, "*") == 1) {
				c.errorf(l.loc, fmt.Sprintf("filter_chains[%d].filter_chain_match.server_names[%d]", i, j),
					"%q: only exact names and a leading \"*.\" wildcard are allowed (Envoy: partial wildcards are not supported); omit server_names to match any name", n)
			}
		}
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			k := chainKey{string(rest), n}
			prev, dup := seen[k]
			switch {
			case !dup:
				seen[k] = i
			case n == "":
				c.errorf(l.loc, fmt.Sprintf("filter_chains[%d]", i),
					"same filter_chain_match as filter_chains[%d] (Envoy: multiple filter chains with the same matching rules are defined)", prev)
			default:
				c.errorf(l.loc, fmt.Sprintf("filter_chains[%d].filter_chain_match.server_names", i),
					"server name %q is already matched by filter_chains[%d] with otherwise identical match criteria (Envoy: multiple filter chains with the same matching rules are defined)", n, prev)
			}
		}
	}
}

// checkStaticEndpoints catches host names in a STATIC cluster. STATIC is the
// default when a cluster has no type, and Envoy then wants literal IPs.
func (c *checker) checkStaticEndpoints(cl clusterRes) {
	if cl.msg.GetClusterType() != nil || cl.msg.GetType() != clusterv3.Cluster_STATIC {
		return
	}
	for i, locality := range cl.msg.GetLoadAssignment().GetEndpoints() {
		for j, lbe := range locality.GetLbEndpoints() {
			sa := lbe.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil || sa.GetResolverName() != "" || net.ParseIP(sa.GetAddress()) != nil {
				continue
			}
			c.errorf(cl.loc, fmt.Sprintf("load_assignment.endpoints[%d].lb_endpoints[%d].endpoint.address.socket_address.address", i, j),
				"%q is not an IP address, but the cluster type is STATIC (the default when type is unset); use STRICT_DNS or LOGICAL_DNS for host names", sa.GetAddress())
		}
	}
}
