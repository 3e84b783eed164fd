package main

import (
	"log/slog"

	"github.com/cilium/cilium/pkg/crypto/certificatemanager"
	envoypolicy "github.com/cilium/cilium/pkg/envoy/policy"
	"github.com/cilium/cilium/pkg/identity"
	"github.com/cilium/cilium/pkg/identity/identitymanager"
	"github.com/cilium/cilium/pkg/policy"
	testpolicy "github.com/cilium/cilium/pkg/testutils/policy"
)

// newRepository for github.com/cilium/cilium@v1.19.7: NewPolicyRepository(logger, initialIDs,
// certManager, l7RulesTranslator, idmgr, metrics) (pkg/policy/repository.go). The L7 translator
// is the agent's own (pkg/envoy/policy/envoy_l7_rules_translator.go, which turns HTTP rules into
// Envoy header matchers while the policy is resolved); its secret manager only serves TLS
// contexts and header secrets, which no analysed rule has. The identity manager is the one
// whose Add() puts an endpoint's identity into the policy cache and the subject selector cache
// (pkg/policy/distillery.go insert).
func newRepository(logger *slog.Logger, ids identity.IdentityMap) (*policy.Repository, identitymanager.IDManager) {
	idmgr := identitymanager.NewIDManager(logger)
	l7 := envoypolicy.NewEnvoyL7RulesTranslator(logger, certificatemanager.NewMockSecretManagerInline())
	return policy.NewPolicyRepository(logger, ids, nil, l7, idmgr, testpolicy.NewPolicyMetricsNoop()), idmgr
}
