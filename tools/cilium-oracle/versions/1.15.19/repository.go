package main

import (
	"github.com/cilium/cilium/pkg/identity/cache"
	"github.com/cilium/cilium/pkg/policy"
	"github.com/cilium/cilium/pkg/policy/api"
)

// newRepository for github.com/cilium/cilium@v1.15.19, whose NewPolicyRepository also takes a
// secret manager and the policy metrics (called on every AddList: the module's own no-op).
func newRepository(alloc cache.IdentityAllocator, ids cache.IdentityCache) *policy.Repository {
	return policy.NewPolicyRepository(alloc, ids, nil, nil, api.NewPolicyMetricsNoop())
}
