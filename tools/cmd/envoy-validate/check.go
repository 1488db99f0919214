package main

import (
	"fmt"
	"os"
	"path/filepath"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// checker accumulates findings; nothing stops at the first error, so one run
// shows everything that is wrong with a rendered config.
type checker struct {
	root  string // --root: prefix for paths found inside a bootstrap
	errs  []string
	notes []string
}

// loc names where a finding is: a file and, inside it, a resource.
type loc struct {
	file  string
	label string // e.g. "resources[0] (listener tls_passthrough)"; may be empty
}

func (l loc) String() string {
	if l.label == "" {
		return l.file
	}
	return l.file + ": " + l.label
}

func (c *checker) errorf(l loc, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	c.errs = append(c.errs, l.String()+": "+msg)
}

func (c *checker) notef(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// configSet is what one Envoy instance would hold at once: the listeners and
// clusters that have to be consistent with each other.
type configSet struct {
	listeners []listenerRes
	clusters  []clusterRes
	refs      []clusterRef
	// clustersKnown is false when some clusters come from a source this tool
	// cannot read (ADS, gRPC CDS), so an unknown cluster name proves nothing.
	clustersKnown bool
}

type listenerRes struct {
	loc
	msg *listenerv3.Listener
}

type clusterRes struct {
	loc
	msg *clusterv3.Cluster
}

// clusterRef is one place that names a cluster by name.
type clusterRef struct {
	loc
	path string
	name string
}

var (
	bootstrapType = (&bootstrapv3.Bootstrap{}).ProtoReflect().Type()
	anyType       = (&anypb.Any{}).ProtoReflect().Type()
	envelopeType  = (&discoveryv3.DiscoveryResponse{}).ProtoReflect().Type()
	listenerName  = (&listenerv3.Listener{}).ProtoReflect().Descriptor().FullName()
	clusterName   = (&clusterv3.Cluster{}).ProtoReflect().Descriptor().FullName()
)

// checkFiles sorts the command-line files into bootstraps (each checked with
// the discovery files it references) and discovery files (checked together).
func (c *checker) checkFiles(files []string) {
	var pool *configSet
	for _, f := range files {
		doc, err := readDoc(f)
		if err != nil {
			c.errorf(loc{file: f}, "", "%v", err)
			continue
		}
		if obj, ok := doc.(map[string]any); ok {
			if _, ok := obj["resources"]; ok {
				if pool == nil {
					pool = &configSet{}
				}
				c.loadDiscovery(f, doc, "", "", pool)
				continue
			}
		}
		c.checkBootstrap(f, doc)
	}
	if pool != nil {
		// With discovery files alone there is no telling whether a cluster is
		// defined elsewhere unless some clusters were given at all.
		pool.clustersKnown = len(pool.clusters) > 0
		if !pool.clustersKnown && len(pool.listeners) > 0 {
			c.notef("no clusters among the discovery files given; cluster references were not checked (pass cds.yaml too)")
		}
		c.checkSet(pool)
	}
}

func (c *checker) checkBootstrap(file string, doc any) {
	at := loc{file: file}
	m, ok := c.decode(at, doc, bootstrapType)
	if !ok {
		return
	}
	b := m.(*bootstrapv3.Bootstrap)
	set := &configSet{clustersKnown: true}

	// Static listeners and clusters go through the same path as discovered
	// ones, so that their errors name the resource they belong to; the rest of
	// the bootstrap is validated without them to avoid reporting twice.
	rest := proto.Clone(b).(*bootstrapv3.Bootstrap)
	if sr := rest.GetStaticResources(); sr != nil {
		sr.Listeners, sr.Clusters = nil, nil
	}
	c.validate(at, rest, "", set)
	for i, l := range b.GetStaticResources().GetListeners() {
		c.addListener(set, loc{file, fmt.Sprintf("static_resources.listeners[%d] (listener %s)", i, l.GetName())}, l)
	}
	for i, cl := range b.GetStaticResources().GetClusters() {
		c.addCluster(set, loc{file, fmt.Sprintf("static_resources.clusters[%d] (cluster %s)", i, cl.GetName())}, cl)
	}

	dr := b.GetDynamicResources()
	if cs := dr.GetLdsConfig(); cs != nil {
		c.followConfigSource(at, "dynamic_resources.lds_config", cs, listenerName, set)
	}
	if cs := dr.GetCdsConfig(); cs != nil {
		if !c.followConfigSource(at, "dynamic_resources.cds_config", cs, clusterName, set) {
			set.clustersKnown = false
		}
	}
	if dr.GetAdsConfig() != nil && dr.GetCdsConfig() == nil {
		set.clustersKnown = false
	}
	c.checkSet(set)
}

// followConfigSource loads the discovery file a file-based config source
// points at. It reports whether every resource of that source was read.
func (c *checker) followConfigSource(at loc, path string, cs *corev3.ConfigSource, want protoreflect.FullName, set *configSet) bool {
	var file, watched string
	switch s := cs.GetConfigSourceSpecifier().(type) {
	case *corev3.ConfigSource_PathConfigSource:
		path += ".path_config_source"
		file = s.PathConfigSource.GetPath()
		watched = s.PathConfigSource.GetWatchedDirectory().GetPath()
	case *corev3.ConfigSource_Path:
		// Deprecated spelling, still accepted by Envoy.
		path += ".path"
		file = s.Path
	default:
		c.notef("%s: %s is not file-based; its resources were not checked", at.file, path)
		return false
	}
	if file == "" {
		return false // PGV has already reported the empty path.
	}
	if watched != "" {
		// Envoy refuses to start when a watched directory is missing.
		if st, err := os.Stat(c.hostPath(watched)); err != nil || !st.IsDir() {
			c.errorf(at, path+".watched_directory.path", "directory %s does not exist", c.describe(watched))
		}
	}
	local := c.hostPath(file)
	doc, err := readDoc(local)
	if err != nil {
		c.errorf(at, path, "%s: %v", c.describe(file), err)
		return false
	}
	c.loadDiscovery(local, doc, want, path, set)
	return true
}

// loadDiscovery checks a DiscoveryResponse-shaped file. want is the resource
// type its config source expects ("" when named on the command line, where
// any type is accepted) and source the config source path, for messages.
func (c *checker) loadDiscovery(file string, doc any, want protoreflect.FullName, source string, set *configSet) {
	at := loc{file: file}
	obj, ok := doc.(map[string]any)
	if !ok {
		c.errorf(at, "", "a discovery file must be a mapping with a resources list")
		return
	}
	// Envoy parses the whole file as a DiscoveryResponse, so the envelope may
	// only hold DiscoveryResponse fields.
	envelope := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "resources" {
			envelope[k] = v
		}
	}
	c.decode(at, envelope, envelopeType)

	list, ok := obj["resources"].([]any)
	if !ok && obj["resources"] != nil {
		c.errorf(at, "resources", "must be a list")
		return
	}
	for i, r := range list {
		rat := loc{file, fmt.Sprintf("resources[%d]", i)}
		m, ok := c.decode(rat, r, anyType)
		if !ok {
			continue
		}
		res, err := unpack(m.(*anypb.Any))
		if err != nil {
			c.errorf(rat, "", "%v", err)
			continue
		}
		got := res.ProtoReflect().Descriptor().FullName()
		if want != "" && got != want {
			c.errorf(rat, "@type", "%s in a file read through %s, which only takes %s", got, source, want)
			continue
		}
		switch x := res.(type) {
		case *listenerv3.Listener:
			rat.label += " (listener " + x.GetName() + ")"
			c.addListener(set, rat, x)
		case *clusterv3.Cluster:
			rat.label += " (cluster " + x.GetName() + ")"
			c.addCluster(set, rat, x)
		default:
			c.validate(rat, res, "", set)
		}
	}
}

func (c *checker) addListener(set *configSet, at loc, l *listenerv3.Listener) {
	set.listeners = append(set.listeners, listenerRes{at, l})
	c.validate(at, l, "", set)
}

func (c *checker) addCluster(set *configSet, at loc, cl *clusterv3.Cluster) {
	set.clusters = append(set.clusters, clusterRes{at, cl})
	c.validate(at, cl, "", set)
}

// hostPath maps a path as Envoy would see it on the host to the file to read.
func (c *checker) hostPath(p string) string {
	if c.root == "" {
		return p
	}
	return filepath.Join(c.root, p)
}

// describe names a host path in a message, with the local file it was read
// as when --root is in effect.
func (c *checker) describe(p string) string {
	if c.root == "" {
		return p
	}
	return fmt.Sprintf("%s (read as %s)", p, c.hostPath(p))
}
