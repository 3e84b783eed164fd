// Command cilium-oracle, built against github.com/cilium/cilium@v1.19.7 (this file replaces the
// base main.go for that version, see scripts/build_cilium_oracle.sh): the same input and output
// as the base (tools/cilium-oracle/main.go), the same path as the agent, through 1.19's code:
//
//   - identities: pkg/k8s GetPodMetadata, labels.Map2Labels(.., "k8s"), labelsfilter.Filter
//     (pkg/endpoint/metadata/k8s_metadatafetcher.go FetchK8sMetadataForEndpointFromPod);
//   - rules: NetworkPolicies through pkg/k8s ParseNetworkPolicy, which in 1.19 returns
//     policy entries (types.PolicyEntries) itself; CNPs/CCNPs through the CRD type's Parse(), then
//     pkg/policy/utils RulesToPolicyEntries (pkg/policy/k8s/cilium_network_policy.go
//     upsertCiliumNetworkPolicyV2); both replace the object's entries in the repository with
//     ReplaceByResource, as pkg/policy/cell/policy_importer.go processUpdates does;
//   - resolution: the identity manager's Add() puts each endpoint's identity into the policy
//     cache, GetSelectorPolicy resolves it, the redirects are created for RedirectFilters() the
//     way pkg/endpoint/bpf.go addNewRedirects does, and DistillPolicy gives the map state the
//     endpoint writes to its BPF policy map (pkg/endpoint/bpf.go addPolicyKey);
//   - lookup: bpf/lib/policy.h __policy_can_access of v1.19.7 (an LPM trie; see lookup below);
//   - L7: what pkg/envoy/xds_server.go getDirectionNetworkPolicy of v1.19.7 sends to Envoy, with
//     the HTTP rules as the agent's L7 translator made them (header matchers with RE2 regexes).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"

	"github.com/cilium/cilium/pkg/endpoint/regeneration"
	"github.com/cilium/cilium/pkg/identity"
	ipcachetypes "github.com/cilium/cilium/pkg/ipcache/types"
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
	policytypes "github.com/cilium/cilium/pkg/policy/types"
	policyutils "github.com/cilium/cilium/pkg/policy/utils"
	"github.com/cilium/cilium/pkg/spanstat"
	testidentity "github.com/cilium/cilium/pkg/testutils/identity"
	"github.com/cilium/cilium/pkg/types"
	"github.com/cilium/cilium/pkg/u8proto"
)

// The chart's cluster.name default. The agent passes it to the parsers because the chart's
// clustermesh.policyDefaultLocalCluster defaults to true in 1.19
// (pkg/clustermesh/types/option.go LocalClusterNameForPolicies).
const clusterName = "default"

// owner is the PolicyOwner the distillation calls back into (pkg/endpoint implements it in the
// agent): named ports of the pod itself on ingress, of every pod on egress (pkg/endpoint/policy.go
// GetNamedPort, unchanged in 1.19).
type owner struct {
	id     uint64
	ports  types.NamedPortMap
	global types.NamedPortMultiMap
}

func (o *owner) GetID() uint64 { return o.id }
func (o *owner) GetNamedPort(ingress bool, name string, proto u8proto.U8proto) uint16 {
	if ingress {
		port, _ := o.ports.GetNamedPort(name, proto)
		return port
	}
	port, _ := o.global.GetNamedPort(name, proto)
	return port
}
func (o *owner) PolicyDebug(string, ...any)         {}
func (o *owner) IsHost() bool                       { return false }
func (o *owner) PreviousMapState() *policy.MapState { return nil }
func (o *owner) RegenerateIfAlive(*regeneration.ExternalRegenerationMetadata) <-chan bool {
	ch := make(chan bool, 1)
	ch <- false
	return ch
}

// stats is the policy-calculation statistics the agent records per endpoint (unused here).
type stats struct{ wait, calc spanstat.SpanStat }

func (s *stats) WaitingForPolicyRepository() *spanstat.SpanStat { return &s.wait }
func (s *stats) SelectorPolicyCalculation() *spanstat.SpanStat  { return &s.calc }

type endpoint struct {
	key    string
	id     identity.NumericIdentity
	owner  *owner
	policy *policy.EndpointPolicy
}

// A redirect's proxy port; any non-zero port does (pkg/endpoint/bpf.go addNewRedirects gets one
// per redirect from the proxy).
const proxyPort = 15001

var logger = slog.New(slog.DiscardHandler)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cilium-oracle: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	logging.DefaultSlogLogger = logger
	option.Config.ClusterName = clusterName
	// Chart default policyEnforcementMode "default" (enforce on endpoints selected by some rule).
	policy.SetPolicyEnabled(option.DefaultEnforcement)
	// The "cluster" entity also selects k8s:io.cilium.k8s.policy.cluster=<name>
	// (pkg/policy/api/entity.go InitEntities, one argument in 1.19).
	api.InitEntities(clusterName)
	// The agent's default identity-relevant label prefixes (no --labels, no label file); 1.19's
	// list also leaves out controller-uid, batch.kubernetes.io/controller-uid and
	// topology.kubernetes.io (pkg/labelsfilter/filter.go defaultLabelPrefixCfg).
	if err := labelsfilter.ParseLabelPrefixCfg(logger, nil, nil, ""); err != nil {
		fail("label filter: %v", err)
	}

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
	debug := os.Getenv("CILIUM_ORACLE_DEBUG") != ""
	out := output{Rejected: []rejected{}, Identities: map[string][]string{}, Results: []result{}}
	namespaces := map[string]*slim_corev1.Namespace{}
	for _, ns := range in.Namespaces {
		namespaces[ns.Name] = &slim_corev1.Namespace{
			ObjectMeta: slim_metav1.ObjectMeta{Name: ns.Name, Labels: ns.Labels},
		}
	}

	idMap := identity.IdentityMap{}
	identity.IterateReservedIdentities(func(ni identity.NumericIdentity, id *identity.Identity) {
		idMap[ni] = id.LabelArray
	})
	byLabels := map[string]identity.NumericIdentity{}
	next := identity.GetMinimalAllocationIdentity(0)
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
		containerPorts, lbls := k8s.GetPodMetadata(logger, ns, pod)
		idLabels, _ := labelsfilter.Filter(labels.Map2Labels(lbls, labels.LabelSourceK8s))
		arr := idLabels.LabelArray()
		sig := arr.String()
		nid, ok := byLabels[sig]
		if !ok {
			nid = next
			next++
			byLabels[sig] = nid
			idMap[nid] = arr
		}
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

	repo, idmgr := newRepository(logger, idMap)
	// The agent sets its DNS name manager here; no FQDN selector is analysed, so the module's
	// own no-op notifier stands in.
	repo.GetSelectorCache().SetLocalIdentityNotifier(testidentity.NewDummyIdentityNotifier())
	for i, raw := range in.Policies {
		entries, resource, err := parsePolicy(raw)
		if err != nil {
			// The agent logs the error and does not import the object (pkg/policy/k8s).
			out.Rejected = append(out.Rejected, rejected{Index: i, Error: err.Error()})
			continue
		}
		if debug {
			dump, _ := json.Marshal(entries)
			fmt.Fprintf(os.Stderr, "policy %d (%s): %s\n", i, resource, dump)
		}
		repo.ReplaceByResource(entries, resource)
	}

	// pkg/endpoint: an endpoint's identity is added to the identity manager, whose observer (the
	// policy cache) inserts it into the subject selector cache (pkg/policy/distillery.go).
	for _, key := range keys {
		ep := endpoints[key]
		idmgr.Add(identity.NewIdentityFromLabelArray(ep.id, idMap[ep.id]))
	}
	for _, key := range keys {
		ep := endpoints[key]
		id := identity.NewIdentityFromLabelArray(ep.id, idMap[ep.id])
		sp, _, err := repo.GetSelectorPolicy(id, 0, &stats{}, ep.owner.id)
		if err != nil {
			fail("resolve policy of %s: %v", key, err)
		}
		ep.policy = sp.DistillPolicy(logger, ep.owner, redirects(sp, ep.owner))
		if err := ep.policy.Ready(); err != nil {
			fail("policy of %s: %v", key, err)
		}
		for k, e := range ep.policy.Entries() {
			if !e.IsValid() {
				// Only a PASS verdict of a tiered policy leaves an invalid entry; no CRD here
				// has tiers (pkg/policy/mapstate.go).
				fail("policy of %s: invalid map entry %s (not modelled)", key, k)
			}
			if e.AuthRequirement != 0 {
				fail("policy of %s: map entry %s requires authentication (not modelled)", key, k)
			}
		}
		if debug {
			l4 := &ep.policy.SelectorPolicy.L4Policy
			fmt.Fprintf(os.Stderr, "%s (identity %d):\n  ingress %v\n  egress %v\n", key, ep.id,
				l4.Ingress.PortRules, l4.Egress.PortRules)
			for k, e := range ep.policy.Entries() {
				fmt.Fprintf(os.Stderr, "  %s -> %s\n", k, e)
			}
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
		eg := decide(src, dst.id, false, proto, pr, debug)
		ing := decide(dst, src.id, true, proto, pr, debug)
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

// redirects mirrors pkg/endpoint/bpf.go addNewRedirects and pkg/endpoint/policy.go proxyID: one
// proxy port per redirect filter, keyed by ProxyID(endpoint, direction, protocol, port,
// listener), the port resolved from a port name through the owner; an unresolvable one is
// skipped. Without its redirect, an entry is left out of the map (pkg/policy/l4.go
// makeMapStateEntry).
func redirects(sp policy.SelectorPolicy, o *owner) map[string]uint16 {
	out := map[string]uint16{}
	for l4, t := range sp.RedirectFilters() {
		port := l4.Port
		proto := l4.U8Proto
		if proto == 0 && !l4.Protocol.IsAny() {
			proto, _ = u8proto.ParseProtocol(string(l4.Protocol))
		}
		if port == 0 && l4.PortName != "" {
			port = o.GetNamedPort(l4.Ingress, l4.PortName, proto)
			if port == 0 {
				continue
			}
		}
		out[policy.ProxyID(uint16(o.id), l4.Ingress, string(l4.Protocol), port, t.Policy.GetListener())] = proxyPort
	}
	return out
}

func parsePolicy(raw json.RawMessage) (policytypes.PolicyEntries, ipcachetypes.ResourceID, error) {
	var head struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, "", err
	}
	ns, name := head.Metadata.Namespace, head.Metadata.Name
	switch head.Kind {
	case "NetworkPolicy":
		var np slim_networkingv1.NetworkPolicy
		if err := json.Unmarshal(raw, &np); err != nil {
			return nil, "", err
		}
		entries, err := k8s.ParseNetworkPolicy(logger, clusterName, &np)
		return entries, ipcachetypes.NewResourceID(ipcachetypes.ResourceKindNetpol, ns, name), err
	case "CiliumNetworkPolicy":
		var cnp cilium_v2.CiliumNetworkPolicy
		if err := json.Unmarshal(raw, &cnp); err != nil {
			return nil, "", err
		}
		rules, err := cnp.Parse(logger, clusterName)
		if err != nil {
			return nil, "", err
		}
		return policyutils.RulesToPolicyEntries(rules), ipcachetypes.NewResourceID(ipcachetypes.ResourceKindCNP, ns, name), nil
	case "CiliumClusterwideNetworkPolicy":
		var ccnp cilium_v2.CiliumClusterwideNetworkPolicy
		if err := json.Unmarshal(raw, &ccnp); err != nil {
			return nil, "", err
		}
		rules, err := ccnp.Parse(logger, clusterName)
		if err != nil {
			return nil, "", err
		}
		return policyutils.RulesToPolicyEntries(rules), ipcachetypes.NewResourceID(ipcachetypes.ResourceKindCCNP, "", name), nil
	}
	return nil, "", fmt.Errorf("unsupported kind %q", head.Kind)
}

// prefixMatch is one map entry found by an LPM lookup and its prefix length beyond the static
// part (identity and direction): 0 for ANY protocol, 8 for a protocol with any port, 8 + the
// port prefix length otherwise (pkg/maps/policymap/policymap.go NewKeyFromPolicyKey).
type prefixMatch struct {
	entry  policy.MapStateEntry
	prefix uint
	found  bool
}

// lpm is one lookup in the BPF_MAP_TYPE_LPM_TRIE policy map: an exact identity and direction, the
// longest prefix on protocol then port that covers the packet.
func lpm(ep *endpoint, remote identity.NumericIdentity, ingress bool, proto u8proto.U8proto, port uint16) prefixMatch {
	best := prefixMatch{}
	for k, e := range ep.policy.Entries() {
		if k.Identity != remote || k.IsIngress() != ingress {
			continue
		}
		var prefix uint
		switch {
		case k.Nexthdr == 0 && k.DestPort == 0:
			prefix = 0
		case k.Nexthdr != proto:
			continue
		case k.DestPort == 0:
			prefix = 8
		default:
			plen := k.PortPrefixLen()
			mask := uint16(0xffff) << (16 - uint(plen))
			if plen == 0 || (k.DestPort^port)&mask != 0 {
				continue
			}
			prefix = 8 + uint(plen)
		}
		if !best.found || prefix > best.prefix {
			best = prefixMatch{entry: e, prefix: prefix, found: true}
		}
	}
	return best
}

// maxPrecedence is MAX_PRECEDENCE of bpf/lib/policy.h (~0U).
const maxPrecedence = ^uint32(0)

// lookup mirrors __policy_can_access in bpf/lib/policy.h of v1.19.7. The map is an LPM trie on
// (identity, direction, protocol, port): first the L3 lookup (the remote identity), unless it
// found an entry of the highest precedence the L4-only lookup (identity 0); the L4-only entry wins
// if there is no L3 entry, or it has a higher precedence, or the same precedence and a longer
// prefix; otherwise the L3 entry decides. Precedence orders deny over allow, and proxy redirects
// by listener priority (pkg/policy/types/entry.go).
func lookup(ep *endpoint, remote identity.NumericIdentity, ingress bool, proto u8proto.U8proto, port uint16) (policy.MapStateEntry, bool) {
	l3 := lpm(ep, remote, ingress, proto, port)
	if l3.found && uint32(l3.entry.Precedence) == maxPrecedence {
		return l3.entry, true
	}
	l4 := lpm(ep, 0, ingress, proto, port)
	if l4.found && (!l3.found || l4.entry.Precedence > l3.entry.Precedence ||
		(l4.entry.Precedence == l3.entry.Precedence && l4.prefix > l3.prefix)) {
		return l4.entry, true
	}
	if l3.found {
		return l3.entry, true
	}
	return policy.MapStateEntry{}, false
}

func decide(ep *endpoint, remote identity.NumericIdentity, ingress bool, proto u8proto.U8proto, pr probeIn, debug bool) sideVerdict {
	entry, found := lookup(ep, remote, ingress, proto, pr.Port)
	if debug {
		// The agent's own userspace mirror of the same lookup (EndpointPolicy.Lookup, "used
		// in testing in place of the bpf datapath"): report where the two differ.
		key := policy.EgressKey()
		if ingress {
			key = policy.IngressKey()
		}
		want, _, wantFound := ep.policy.Lookup(key.WithIdentity(remote).WithPortProto(proto, pr.Port))
		if wantFound != found || (found && (want.IsDeny() != entry.IsDeny() || want.ProxyPort != entry.ProxyPort)) {
			fmt.Fprintf(os.Stderr, "lookup differs from EndpointPolicy.Lookup: %s ingress=%v remote=%d %v/%d: bpf %v %s, userspace %v %s\n",
				ep.key, ingress, remote, proto, pr.Port, found, entry, wantFound, want)
		}
	}
	switch {
	case !found:
		return sideVerdict{Entry: "none"}
	case entry.IsDeny():
		return sideVerdict{Entry: "deny"}
	case !entry.IsRedirectEntry():
		return sideVerdict{Entry: "allow", Allowed: true, HTTPAllowed: true}
	}
	restricted, httpOK := l7(ep, remote, ingress, proto, pr)
	return sideVerdict{Entry: "redirect", Allowed: true, L7Restricted: restricted, HTTPAllowed: httpOK}
}

// l7 evaluates what Envoy enforces on a redirected port, from what the agent sends it
// (pkg/envoy/xds_server.go getDirectionNetworkPolicy of v1.19.7): the L4 filters of every tier
// of the direction on TCP or ANY, the port-specific ones on the probe's port (or port range) and
// the port-0 ones, whose rules carry no L7 (getWildcardNetworkPolicyRules). A rule applies to
// the peer when its selector is the wildcard or selects the peer's identity
// (getPortNetworkPolicyRule: RemotePolicies are the selector's selections; 1.15's "a filter
// with a single selector is a wildcard" is gone). An applicable allow rule without HTTP rules
// allows every request; otherwise the HTTP rules are OR-ed, each a list of header matchers that
// must all match (pkg/envoy/policy/envoy_l7_rules_translator.go: `:method` and `:path` as RE2
// regexes, which Envoy's safe_regex matches against the whole value).
func l7(ep *endpoint, remote identity.NumericIdentity, ingress bool, proto u8proto.U8proto, pr probeIn) (restricted bool, httpOK bool) {
	dir := ep.policy.SelectorPolicy.L4Policy.Egress
	if ingress {
		dir = ep.policy.SelectorPolicy.L4Policy.Ingress
	}
	if proto != u8proto.TCP {
		return false, true // only TCP is redirected to Envoy
	}
	var rules [][]headerMatch
	for f := range dir.PortRules.Filters() {
		if f.U8Proto != u8proto.TCP && f.U8Proto != u8proto.ANY {
			continue // other protocols' rules are not sent to Envoy
		}
		port := f.Port
		if port == 0 && f.PortName != "" {
			port = ep.owner.GetNamedPort(ingress, f.PortName, f.U8Proto)
			if port == 0 {
				continue
			}
		}
		if port != 0 {
			end := f.EndPort
			if end < port {
				end = port
			}
			if pr.Port < port || pr.Port > end {
				continue
			}
		}
		for cs, psp := range f.PerSelectorPolicies {
			if psp != nil && psp.IsDeny() {
				continue // a deny for this peer would have been the map's verdict
			}
			if !cs.IsWildcard() && !cs.Selects(remote) {
				continue
			}
			if port == 0 || psp == nil || len(psp.HTTP) == 0 || psp.EnvoyHTTPRules() == nil {
				return false, true
			}
			for _, r := range psp.EnvoyHTTPRules().HttpRules {
				var hs []headerMatch
				for _, h := range r.Headers {
					hs = append(hs, headerMatch{name: h.Name, regex: h.GetStringMatch().GetSafeRegex().GetRegex()})
				}
				if len(hs) == 0 {
					return false, true // a rule without matchers matches every request
				}
				rules = append(rules, hs)
			}
		}
	}
	if len(rules) == 0 {
		return true, false
	}
	if pr.Method == nil && pr.Path == nil {
		return true, true
	}
	for _, r := range rules {
		ok := true
		for _, h := range r {
			switch h.name {
			case ":method":
				ok = ok && fullMatch(h.regex, pr.Method)
			case ":path":
				ok = ok && fullMatch(h.regex, pr.Path)
			default:
				fail("HTTP header matcher %q is not modelled", h.name)
			}
		}
		if ok {
			return true, true
		}
	}
	return true, false
}

type headerMatch struct{ name, regex string }

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
