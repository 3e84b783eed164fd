package main

import (
	"github.com/cilium/cilium/pkg/identity/cache"
	"github.com/cilium/cilium/pkg/policy"
)

// newRepository builds the agent's policy repository as github.com/cilium/cilium@v1.15.0 does
// (pkg/policy/repository.go NewPolicyRepository: no certificate or secret manager is needed for
// the rules analysed). tools/cilium-oracle/versions/<version>/repository.go replaces this file
// where the signature differs.
func newRepository(alloc cache.IdentityAllocator, ids cache.IdentityCache) *policy.Repository {
	return policy.NewPolicyRepository(alloc, ids, nil, nil)
}
