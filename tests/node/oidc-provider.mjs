// A real OpenID Provider (the certified `oidc-provider` package) on 127.0.0.1, set up
// like Google's: the claims `sub`, `email`, `email_verified`, `name`, `picture` in the
// ID token, authorization code flow with PKCE, client_secret_post at the token
// endpoint. Driven by server/tests/it/google_signin*.rs.
//
// Environment: CLIENT_ID, CLIENT_SECRET, REDIRECT_URI (our callback).
// Prints `READY <issuer>` once listening. Accounts come from the dev login form: any
// login is accepted; `unverified:<email>` signs in with `email_verified: false`.
//
// Test controls (loopback only, for the test that started this process):
//   POST /__rotate  replaces the signing key: the JWKS then holds only the new key
//   GET  /__stats   {"jwks": n}, how often the JWKS was fetched

import { createServer } from 'node:http';
import { createHash, generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const { CLIENT_ID, CLIENT_SECRET, REDIRECT_URI } = process.env;
if (!CLIENT_ID || !CLIENT_SECRET || !REDIRECT_URI) {
  console.error('CLIENT_ID, CLIENT_SECRET and REDIRECT_URI are required');
  process.exit(2);
}

const stats = { jwks: 0 };
let keyCounter = 0;

async function signingKey() {
  keyCounter += 1;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `test-key-${keyCounter}-${Date.now()}`, alg: 'RS256', use: 'sig' };
}

function claimsFor(login) {
  const unverified = login.startsWith('unverified:');
  const email = (unverified ? login.slice('unverified:'.length) : login).toLowerCase();
  const local = email.split('@')[0] || 'user';
  return {
    // Google's `sub` is an opaque, stable number-like string.
    sub: createHash('sha256').update(email).digest('hex').slice(0, 21),
    email,
    email_verified: !unverified,
    name: local.replace(/[._-]+/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase()),
    picture: `https://lh3.googleusercontent.com/a/${local}`,
  };
}

function buildProvider(issuer, key) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    }],
    jwks: { keys: [key] },
    // Google puts the profile claims into the ID token itself.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'picture'],
    },
    scopes: ['openid', 'email', 'profile'],
    pkce: { required: () => true },
    cookies: { keys: ['test-cookie-key-for-the-local-provider'] },
    async findAccount(ctx, id) {
      const claims = claimsFor(id);
      return { accountId: id, async claims() { return claims; } };
    },
    // Quiet: these warnings are about dev-only features this test relies on.
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  return provider;
}

const server = createServer();
// Idle connections stay open longer than any pause in the tests driving this provider.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;
let current = buildProvider(issuer, await signingKey());
let handler = current.callback();

server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/__rotate' && req.method === 'POST') {
    const key = await signingKey();
    current = buildProvider(issuer, key);
    handler = current.callback();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kid: key.kid }));
    return;
  }
  if (url.pathname === '/__stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  if (url.pathname === '/jwks') stats.jwks += 1;
  handler(req, res);
});

process.stdout.write(`READY ${issuer}\n`);
process.on('SIGTERM', () => process.exit(0));
