"""Entry point of the ADR-013 CrossGuard pack: assembles the policies, nothing else."""

from adr013_guard import PACK_ENFORCEMENT_LEVEL, PACK_NAME, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=list(POLICIES),
    enforcement_level=PACK_ENFORCEMENT_LEVEL,
)
