package main

// The oracle's case format, the same for every Cilium version it is built against (the version
// directories under versions/ replace main.go and repository.go, never this file; see
// scripts/build_cilium_oracle.sh and docs/cilium-oracle.md).

import "encoding/json"

type nsIn struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

type portIn struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
}

type podIn struct {
	Namespace      string            `json:"namespace"`
	Name           string            `json:"name"`
	Labels         map[string]string `json:"labels"`
	ServiceAccount string            `json:"serviceAccount"`
	Ports          []portIn          `json:"ports"`
}

type probeIn struct {
	Src      string  `json:"src"`
	Dst      string  `json:"dst"`
	Protocol string  `json:"protocol"`
	Port     uint16  `json:"port"`
	Method   *string `json:"method"`
	Path     *string `json:"path"`
}

type input struct {
	Namespaces []nsIn            `json:"namespaces"`
	Pods       []podIn           `json:"pods"`
	Policies   []json.RawMessage `json:"policies"`
	Probes     []probeIn         `json:"probes"`
}

type rejected struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// sideVerdict is one direction's answer: which policy-map entry the datapath hits, and what
// the L7 proxy would do with it.
type sideVerdict struct {
	Entry        string `json:"entry"` // "none", "deny", "allow", "redirect"
	Allowed      bool   `json:"allowed"`
	L7Restricted bool   `json:"l7Restricted"`
	HTTPAllowed  bool   `json:"httpAllowed"`
}

type result struct {
	Allowed      bool        `json:"allowed"`
	L7Restricted bool        `json:"l7Restricted"`
	Egress       sideVerdict `json:"egress"`
	Ingress      sideVerdict `json:"ingress"`
}

type output struct {
	Rejected   []rejected          `json:"rejected"`
	Identities map[string][]string `json:"identities"`
	Results    []result            `json:"results"`
}
