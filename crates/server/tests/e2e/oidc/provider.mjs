// A real OpenID Connect provider (panva's oidc-provider) on loopback for Gatehouse's
// AssumeRoleWithWebIdentity tests. Usage: node provider.mjs PORT
//
// Clients use the client_credentials grant with a resource indicator; the provider issues
// JWT access tokens (RFC 9068: iss, sub = client id, aud = resource, exp, iat) signed with
// its own keys (RS256, ES256, EdDSA; the signing algorithm follows the client id's suffix),
// published at the jwks_uri of its discovery document. The resource `urn:gatehouse:hs256`
// yields an HMAC-signed token, which Gatehouse must refuse.
//
// Clients whose tokens carry extra claims (the provider's `extraTokenClaims`): `gh-main`
// and `gh-dev` like GitHub Actions' (repository, ref, job_workflow_ref, environment), and
// `forger`, whose token also carries `SUB` naming another subject than its own `sub`.
//
// Tokens the provider will not produce (expired, another issuer, unknown key, alg none)
// come from POST /test/mint, which signs the given claims with the provider's own keys (or a
// key it does not publish) so that only the claim under test is wrong.
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.argv[2] || 0);
const issuer = `http://127.0.0.1:${port}`;

async function keyPair(alg, kid, opts) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...opts });
  return { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
}

const keys = [
  await keyPair('RS256', 'rsa-1'),
  await keyPair('ES256', 'ec-1'),
  await keyPair('EdDSA', 'ed-1', { crv: 'Ed25519' }),
];
const unpublished = await keyPair('RS256', 'not-published');
// Keys added later (key rotation): signed with by /test/mint {kid}, served at /jwks once
// POST /test/publish {kid} has been called.
const later = new Map();
const published = new Set();

function publicJwk(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}
const hmacKey = Buffer.from('gatehouse-test-hmac-key-0123456789abcdef');

function algFor(clientId) {
  if (clientId.endsWith('-es')) return 'ES256';
  if (clientId.endsWith('-ed')) return 'EdDSA';
  return 'RS256';
}

const EXTRA_CLAIMS = {
  'gh-main': { repository: 'org/app', ref: 'refs/heads/main', job_workflow_ref: 'org/app/.github/workflows/deploy.yml@refs/heads/main', environment: 'prod' },
  'gh-dev': { repository: 'org/app', ref: 'refs/heads/dev', job_workflow_ref: 'org/app/.github/workflows/deploy.yml@refs/heads/dev', environment: 'prod' },
  forger: { SUB: 'repo-org-app-main' },
};

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
});

const provider = new Provider(issuer, {
  clients: ['repo-org-app-main', 'app-es', 'app-ed', 'repo-org-app-dev', 'gh-main', 'gh-dev', 'forger'].map(client),
  extraTokenClaims: async (ctx, token) => EXTRA_CLAIMS[token.clientId],
  jwks: { keys },
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:gatehouse:sts',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, c) => {
        if (resource === 'urn:gatehouse:hs256') {
          return { scope: 'openid', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'HS256', key: hmacKey } } };
        }
        return { scope: 'openid', accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: algFor(c.clientId) } } };
      },
    },
  },
});

// The test-only endpoints, ahead of the provider's own routes.
provider.use(async (ctx, next) => {
  if (ctx.path === '/jwks' && ctx.method === 'GET') {
    // The provider's keys plus any published later, as the provider would after rotation.
    ctx.type = 'application/jwk-set+json';
    // Short, so that a key taken out of the set (POST /test/unpublish) stops working soon.
    ctx.set('Cache-Control', 'max-age=2');
    ctx.body = { keys: [...keys, ...[...later.values()].filter((k) => published.has(k.kid))].map(publicJwk) };
    return undefined;
  }
  if (!ctx.path.startsWith('/test/') || ctx.method !== 'POST') return next();
  const chunks = [];
  for await (const c of ctx.req) chunks.push(c);
  const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
  if (ctx.path === '/test/unpublish') {
    published.delete(body.kid);
    ctx.body = { published: [...published] };
    return undefined;
  }
  if (ctx.path === '/test/publish') {
    published.add(body.kid);
    ctx.body = { published: [...published] };
    return undefined;
  }
  if (body.kid && !later.has(body.kid)) later.set(body.kid, await keyPair('RS256', body.kid));
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: issuer, iat: now, exp: now + 600, ...body.claims };
  for (const [k, v] of Object.entries(claims)) if (v === null) delete claims[k];
  let token;
  if (body.alg === 'none') {
    token = new jose.UnsecuredJWT(claims).encode();
  } else {
    const jwk = body.kid ? later.get(body.kid)
      : body.unpublished ? unpublished : keys.find((k) => k.alg === (body.alg || 'RS256'));
    const key = await jose.importJWK(jwk, jwk.alg);
    token = await new jose.SignJWT(claims).setProtectedHeader({ alg: jwk.alg, kid: jwk.kid }).sign(key);
  }
  ctx.type = 'application/json';
  ctx.body = { token };
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
