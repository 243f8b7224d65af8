// Oracle for crates/policy/tests/differential.rs: runs each case through
// @cloud-copilot/iam-simulate and prints its decision.
//
// stdin:  a JSON array of cases
//   { "id": 0,
//     "principal": "arn:aws:iam::111122223333:user/alice",
//     "action": "bedrock:InvokeModel",
//     "resource": "arn:aws:bedrock:us-east-1::foundation-model/x",
//     "resourceAccount": "111122223333",
//     "context": { "aws:SourceIp": "10.0.0.1", "aws:TagKeys": ["a", "b"] },
//     "identity": ["<policy JSON text>", ...],
//     "guardrails": [["<policy JSON text>", ...], ...],   // one list per SCP level, root first
//     "boundary": "<policy JSON text>" | null,
//     "resourcePolicy": "<policy JSON text>" | null,
//     "session": "<policy JSON text>" | null }
// stdout: a JSON array, in the same order, of
//   { "id": 0, "decision": "Allow" | "ExplicitDeny" | "ImplicitDeny" | null,
//     "error": null | "text", "ignoredContextKeys": ["..."] }
import { runSimulation } from '@cloud-copilot/iam-simulate'

const DECISIONS = {
  Allowed: 'Allow',
  ExplicitlyDenied: 'ExplicitDeny',
  ImplicitlyDenied: 'ImplicitDeny'
}

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

async function simulate(c) {
  const simulation = {
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: c.resourceAccount },
      contextVariables: c.context ?? {}
    },
    identityPolicies: (c.identity ?? []).map((text, i) => ({
      name: `identity-${i}`,
      policy: JSON.parse(text)
    })),
    serviceControlPolicies: (c.guardrails ?? []).map((level, l) => ({
      orgIdentifier: `ou-level-${l}`,
      policies: level.map((text, i) => ({ name: `scp-${l}-${i}`, policy: JSON.parse(text) }))
    })),
    resourceControlPolicies: []
  }
  if (c.boundary) {
    simulation.permissionBoundaryPolicies = [{ name: 'boundary', policy: JSON.parse(c.boundary) }]
  }
  if (c.resourcePolicy) simulation.resourcePolicy = JSON.parse(c.resourcePolicy)
  if (c.session) simulation.sessionPolicy = JSON.parse(c.session)

  const r = await runSimulation(simulation, {})
  if (r.resultType === 'error') {
    return { id: c.id, decision: null, error: JSON.stringify(r.errors), ignoredContextKeys: [] }
  }
  if (r.resultType !== 'single') {
    return {
      id: c.id,
      decision: null,
      error: `unexpected resultType ${r.resultType} (wildcard resource in the request?)`,
      ignoredContextKeys: []
    }
  }
  const decision = DECISIONS[r.overallResult]
  return {
    id: c.id,
    decision: decision ?? null,
    error: decision ? null : `unexpected overallResult ${r.overallResult}`,
    ignoredContextKeys: r.result.ignoredContextKeys ?? []
  }
}

const cases = JSON.parse(await readStdin())
const out = []
for (const c of cases) {
  try {
    out.push(await simulate(c))
  } catch (e) {
    out.push({ id: c.id, decision: null, error: `exception: ${e?.stack ?? e}`, ignoredContextKeys: [] })
  }
}
process.stdout.write(JSON.stringify(out))
