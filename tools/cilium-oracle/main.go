// Command cilium-oracle answers allow/deny for pod-to-pod probes with Cilium 1.15.0's own policy
// code, the code the agent runs: pkg/k8s turns NetworkPolicies into Cilium rules, the CRD types'
// Parse() turns CiliumNetworkPolicies into rules, a pkg/policy Repository whose SelectorCache holds
// every identity resolves each endpoint's policy, and each endpoint's distilled policy map
// (SelectorPolicy.Consume -> EndpointPolicy.GetPolicyMap()) is looked up in the order the BPF
// program uses (bpf/lib/policy.h, __policy_can_access). It is the ground truth of cnistack's
// `cilium` profile in tests/test_connectivity_oracle.py; see docs/cilium-oracle.md.
//
// Input (stdin, a stream of JSON objects, one per case): {"namespaces": [{"name", "labels"}], "pods": [{"namespace",
// "name", "labels", "serviceAccount", "ports": [{"name", "protocol", "port"}]}], "policies": [raw
// NetworkPolicy / CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy objects], "probes":
// [{"src": "ns/pod", "dst": "ns/pod", "protocol", "port", "method"?, "path"?}]}.
// Output (stdout, one line per case): {"rejected": [{"index", "error"}], "identities": {"ns/pod": [labels]},
// "results": [{"allowed", "l7Restricted", "egress", "ingress"}]} in probe order.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"

	"github.com/sirupsen/logrus"

	"github.com/cilium/cilium/pkg/identity"
	"github.com/cilium/cilium/pkg/identity/cache"
	"github.com/cilium/cilium/pkg/k8s"
	cilium_v2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	slim_corev1 "github.com/cilium/cilium/pkg/k8s/slim/k8s/api/core/v1"
	slim_networkingv1 "github.com/cilium/cilium/pkg/k8s/slim/k8s/api/networking/v1"
	slim_metav1 "github.com/cilium/cilium/pkg/k8s/slim/k8s/apis/meta/v1"
	"github.com/cilium/cilium/pkg/labels"
	"github.com/cilium/cilium/pkg/labelsfilter"
	"github.com/cilium/cilium/pkg/logging"
	"github.com/cilium/cilium/pkg/option"
	"github.com/cilium/cilium/pkg/policy"
	"github.com/cilium/cilium/pkg/policy/api"
	"github.com/cilium/cilium/pkg/policy/trafficdirection"
	testidentity "github.com/cilium/cilium/pkg/testutils/identity"
	"github.com/cilium/cilium/pkg/types"
	"github.com/cilium/cilium/pkg/u8proto"
)

const clusterName = "default" // the chart's cluster.name default

// owner is the PolicyOwner the distillation calls back into (pkg/endpoint implements it in the
// agent): named ports of the pod itself on ingress, of every pod on egress
// (pkg/endpoint/policy.go GetNamedPort), and a non-zero proxy port so that redirect entries are
// kept (resolve.go drops them while the port is 0).
type owner struct {
	id     uint64
	ports  types.NamedPortMap
	global types.NamedPortMultiMap
}

func (o *owner) GetID() uint64 { return o.id }
func (o *owner) LookupRedirectPortBuildLocked(bool, string, uint16) uint16 {
	return 15001
}
func (o *owner) HasBPFPolicyMap() bool { return true }
func (o *owner) GetNamedPort(ingress bool, name string, proto uint8) uint16 {
	if ingress {
		port, _ := o.ports.GetNamedPort(name, proto)
		return port
	}
	port, _ := o.global.GetNamedPort(name, proto)
	return port
}
func (o *owner) PolicyDebug(logrus.Fields, string) {}

type endpoint struct {
	key    string
	id     identity.NumericIdentity
	owner  *owner
	policy *policy.EndpointPolicy
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cilium-oracle: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	logging.DefaultLogger.SetOutput(io.Discard)
	logging.DefaultLogger.SetLevel(logrus.PanicLevel)
	option.Config.ClusterName = clusterName
	// daemon_main.go: policy.SetPolicyEnabled(option.Config.EnablePolicy), chart default
	// policyEnforcementMode "default" (enforce on endpoints selected by some rule).
	policy.SetPolicyEnabled(option.DefaultEnforcement)
	// daemon/cmd/daemon.go: policyAPI.InitEntities(ClusterInfo.Name, treatRemoteNodeAsHost); the
	// "cluster" entity then also selects k8s:io.cilium.k8s.policy.cluster=<name>.
	api.InitEntities(clusterName, false)
	// The agent's default identity-relevant label prefixes (no --labels, no label file).
	if err := labelsfilter.ParseLabelPrefixCfg(nil, ""); err != nil {
		fail("label filter: %v", err)
	}

	// One JSON object per case, one output line per case: a campaign of many clusters costs one
	// process start. Each case gets its own Repository and SelectorCache.
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	for {
		var in input
		if err := dec.Decode(&in); err == io.EOF {
			break
		} else if err != nil {
			fail("bad input: %v", err)
		}
		if err := enc.Encode(run(in)); err != nil {
			fail("write: %v", err)
		}
		if err := w.Flush(); err != nil {
			fail("write: %v", err)
		}
	}
}

func run(in input) output {
	out := output{Rejected: []rejected{}, Identities: map[string][]string{}, Results: []result{}}
	namespaces := map[string]*slim_corev1.Namespace{}
	for _, ns := range in.Namespaces {
		namespaces[ns.Name] = &slim_corev1.Namespace{
			ObjectMeta: slim_metav1.ObjectMeta{Name: ns.Name, Labels: ns.Labels},
		}
	}

	// Identities: the agent's derivation, pod + namespace -> labels (pkg/k8s GetPodMetadata,
	// then daemon/cmd/endpoint.go: labels.Map2Labels(.., "k8s") and labelsfilter.Filter).
	idCache := cache.IdentityCache{}
	identity.IterateReservedIdentities(func(ni identity.NumericIdentity, id *identity.Identity) {
		idCache[ni] = id.Labels.LabelArray()
	})
	byLabels := map[string]identity.NumericIdentity{}
	next := identity.GetMinimalAllocationIdentity()
	global := types.NewNamedPortMultiMap()
	endpoints := map[string]*endpoint{}
	keys := []string{}
	for i, p := range in.Pods {
		ns := namespaces[p.Namespace]
		if ns == nil {
			ns = &slim_corev1.Namespace{ObjectMeta: slim_metav1.ObjectMeta{
				Name:   p.Namespace,
				Labels: map[string]string{"kubernetes.io/metadata.name": p.Namespace},
			}}
			namespaces[p.Namespace] = ns
		}
		pod := &slim_corev1.Pod{
			ObjectMeta: slim_metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels},
			Spec:       slim_corev1.PodSpec{ServiceAccountName: p.ServiceAccount},
		}
		container := slim_corev1.Container{Name: "main"}
		for _, port := range p.Ports {
			container.Ports = append(container.Ports, slim_corev1.ContainerPort{
				Name: port.Name, ContainerPort: port.Port, Protocol: slim_corev1.Protocol(port.Protocol),
			})
		}
		pod.Spec.Containers = []slim_corev1.Container{container}
		containerPorts, lbls, _, err := k8s.GetPodMetadata(ns, pod)
		if err != nil {
			fail("pod %s/%s: %v", p.Namespace, p.Name, err)
		}
		idLabels, _ := labelsfilter.Filter(labels.Map2Labels(lbls, labels.LabelSourceK8s))
		arr := idLabels.LabelArray()
		sig := arr.String()
		nid, ok := byLabels[sig]
		if !ok {
			nid = next
			next++
			byLabels[sig] = nid
			idCache[nid] = arr
		}
		// pkg/endpoint SetK8sMetadata: named ports of the pod's containers.
		npm := types.NamedPortMap{}
		for _, cp := range containerPorts {
			if cp.Name == "" {
				continue
			}
			_ = npm.AddPort(cp.Name, int(cp.ContainerPort), string(cp.Protocol))
		}
		global.Update(nil, npm)
		key := p.Namespace + "/" + p.Name
		endpoints[key] = &endpoint{key: key, id: nid, owner: &owner{id: uint64(i + 1), ports: npm, global: global}}
		keys = append(keys, key)
		names := make([]string, 0, len(arr))
		for _, l := range arr {
			names = append(names, l.String())
		}
		sort.Strings(names)
		out.Identities[key] = names
	}

	// The constructor's signature changes within the 1.15 line (repository.go, per version).
	repo := newRepository(testidentity.NewMockIdentityAllocator(idCache), idCache)
	// The agent sets its DNS name manager here (daemon.go); no FQDN selector is analysed, so
	// the module's own no-op notifier stands in (the selector cache locks it on every change).
	repo.GetSelectorCache().SetLocalIdentityNotifier(testidentity.NewDummyIdentityNotifier())
	for i, raw := range in.Policies {
		rules, err := parsePolicy(raw)
		if err != nil {
			// The agent logs the error and does not import the object (pkg/k8s/watchers).
			out.Rejected = append(out.Rejected, rejected{Index: i, Error: err.Error()})
			continue
		}
		if os.Getenv("CILIUM_ORACLE_DEBUG") != "" {
			dump, _ := json.Marshal(rules)
			fmt.Fprintf(os.Stderr, "policy %d: %s\n", i, dump)
		}
		repo.AddList(rules)
	}

	cacheP := repo.GetPolicyCache()
	for _, key := range keys {
		ep := endpoints[key]
		id := identity.NewIdentityFromLabelArray(ep.id, idCache[ep.id])
		cacheP.LocalEndpointIdentityAdded(id)
		repo.Mutex.RLock()
		err := cacheP.UpdatePolicy(id)
		repo.Mutex.RUnlock()
		if err != nil {
			fail("resolve policy of %s: %v", key, err)
		}
		ep.policy = cacheP.Lookup(id).Consume(ep.owner)
		if os.Getenv("CILIUM_ORACLE_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "%s (identity %d):\n  ingress %s\n  egress %s\n", key, ep.id,
				ep.policy.L4Policy.Ingress.PortRules, ep.policy.L4Policy.Egress.PortRules)
			ep.policy.GetPolicyMap().ForEach(func(k policy.Key, e policy.MapStateEntry) bool {
				fmt.Fprintf(os.Stderr, "  %s -> %s\n", k, e)
				return true
			})
		}
	}

	for _, pr := range in.Probes {
		src, dst := endpoints[pr.Src], endpoints[pr.Dst]
		if src == nil || dst == nil {
			fail("probe %s -> %s: unknown pod", pr.Src, pr.Dst)
		}
		proto, err := u8proto.ParseProtocol(pr.Protocol)
		if err != nil {
			fail("probe protocol %q: %v", pr.Protocol, err)
		}
		eg := decide(src, dst.id, false, uint8(proto), pr)
		ing := decide(dst, src.id, true, uint8(proto), pr)
		allowed := eg.Allowed && ing.Allowed
		if pr.Method != nil || pr.Path != nil {
			allowed = allowed && eg.HTTPAllowed && ing.HTTPAllowed
		}
		out.Results = append(out.Results, result{
			Allowed:      allowed,
			L7Restricted: eg.Allowed && ing.Allowed && (eg.L7Restricted || ing.L7Restricted),
			Egress:       eg,
			Ingress:      ing,
		})
	}
	return out
}

func parsePolicy(raw json.RawMessage) (api.Rules, error) {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, err
	}
	switch head.Kind {
	case "NetworkPolicy":
		var np slim_networkingv1.NetworkPolicy
		if err := json.Unmarshal(raw, &np); err != nil {
			return nil, err
		}
		return k8s.ParseNetworkPolicy(&np)
	case "CiliumNetworkPolicy":
		var cnp cilium_v2.CiliumNetworkPolicy
		if err := json.Unmarshal(raw, &cnp); err != nil {
			return nil, err
		}
		return cnp.Parse()
	case "CiliumClusterwideNetworkPolicy":
		var ccnp cilium_v2.CiliumClusterwideNetworkPolicy
		if err := json.Unmarshal(raw, &ccnp); err != nil {
			return nil, err
		}
		return ccnp.Parse()
	}
	return nil, fmt.Errorf("unsupported kind %q", head.Kind)
}

// lookup mirrors __policy_can_access in bpf/lib/policy.h (v1.15.0): match precedence
// 1. id/proto/port, 2. ANY/proto/port, 3. id/proto/ANY, 4. ANY/proto/ANY, 5. id/ANY/ANY,
// 6. ANY/ANY/ANY; the first entry found decides (deny drops, a proxy port redirects).
func lookup(ms policy.MapState, remote identity.NumericIdentity, ingress bool, proto uint8, port uint16) (policy.MapStateEntry, bool) {
	dir := trafficdirection.Egress.Uint8()
	if ingress {
		dir = trafficdirection.Ingress.Uint8()
	}
	id := remote.Uint32()
	for _, k := range []policy.Key{
		{Identity: id, DestPort: port, Nexthdr: proto, TrafficDirection: dir},
		{Identity: 0, DestPort: port, Nexthdr: proto, TrafficDirection: dir},
		{Identity: id, DestPort: 0, Nexthdr: proto, TrafficDirection: dir},
		{Identity: 0, DestPort: 0, Nexthdr: proto, TrafficDirection: dir},
		{Identity: id, DestPort: 0, Nexthdr: 0, TrafficDirection: dir},
		{Identity: 0, DestPort: 0, Nexthdr: 0, TrafficDirection: dir},
	} {
		if e, ok := ms.Get(k); ok {
			return e, true
		}
	}
	return policy.MapStateEntry{}, false
}

func decide(ep *endpoint, remote identity.NumericIdentity, ingress bool, proto uint8, pr probeIn) sideVerdict {
	entry, found := lookup(ep.policy.GetPolicyMap(), remote, ingress, proto, pr.Port)
	switch {
	case !found:
		return sideVerdict{Entry: "none"}
	case entry.IsDeny:
		return sideVerdict{Entry: "deny"}
	case !entry.IsRedirectEntry():
		return sideVerdict{Entry: "allow", Allowed: true, HTTPAllowed: true}
	}
	restricted, httpOK := l7(ep, remote, ingress, proto, pr)
	return sideVerdict{Entry: "redirect", Allowed: true, L7Restricted: restricted, HTTPAllowed: httpOK}
}

// l7 evaluates what the proxy enforces on a redirected port, the way the agent builds Envoy's
// policy (pkg/envoy/xds_server.go getDirectionNetworkPolicy): every TCP L4Filter of the
// direction on that port, plus the port-0 filters (L3-only rules get an L7 allow-all "in case
// there are other port-specific rules"); a filter with a single selector is a wildcard (BPF
// already checked L3). A selector without HTTP rules, or with an empty HTTP rule, allows every
// request; HTTP rules are OR-ed, method and path are RE2 regexes matched against the whole value.
func l7(ep *endpoint, remote identity.NumericIdentity, ingress bool, proto uint8, pr probeIn) (restricted bool, httpOK bool) {
	dir := ep.policy.L4Policy.Egress
	if ingress {
		dir = ep.policy.L4Policy.Ingress
	}
	var rules []api.PortRuleHTTP
	for _, f := range dir.PortRules {
		if f.Protocol == api.ProtoUDP || f.Protocol == api.ProtoSCTP || proto != uint8(u8proto.TCP) {
			continue // UDP/SCTP rules are not sent to Envoy
		}
		port := uint16(f.Port)
		if f.PortName != "" {
			port = ep.owner.GetNamedPort(ingress, f.PortName, proto)
			if port == 0 {
				continue
			}
		}
		if port != 0 && port != pr.Port {
			continue
		}
		for cs, psp := range f.PerSelectorPolicies {
			if psp != nil && psp.IsDeny {
				continue
			}
			applies := cs.Selects(remote) || (port != 0 && (len(f.PerSelectorPolicies) == 1 || cs.IsWildcard()))
			if !applies {
				continue
			}
			if port == 0 || psp == nil || len(psp.HTTP) == 0 {
				return false, true
			}
			for _, r := range psp.HTTP {
				// An empty HTTP rule matches every request; merging an L4-only allow into a
				// selector with HTTP rules appends one (rule.go appendL7WildcardRule).
				if r.Method == "" && r.Path == "" && r.Host == "" && len(r.Headers) == 0 && len(r.HeaderMatches) == 0 {
					return false, true
				}
			}
			rules = append(rules, psp.HTTP...)
		}
	}
	if len(rules) == 0 {
		return true, false
	}
	if pr.Method == nil && pr.Path == nil {
		return true, true
	}
	for _, r := range rules {
		if fullMatch(r.Method, pr.Method) && fullMatch(r.Path, pr.Path) {
			return true, true
		}
	}
	return true, false
}

func fullMatch(pattern string, value *string) bool {
	if pattern == "" || value == nil {
		return true
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return false
	}
	return re.MatchString(*value)
}
