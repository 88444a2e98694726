// Sign-in with Google in headless Chromium (playwright-core on MAS_CHROMIUM; no browser
// is downloaded). Driven by server/tests/it/google_signin.rs against the local
// OpenID Provider (oidc-provider.mjs). Prints one JSON line with each scenario's result.
//
// Environment: MAS_CHROMIUM, APP (our server), ISSUER (the provider), LANDING
// (GOOGLE_POST_LOGIN_REDIRECT).

import { chromium } from 'playwright-core';

const { MAS_CHROMIUM, APP, ISSUER, LANDING } = process.env;
const browser = await chromium.launch({
  executablePath: MAS_CHROMIUM,
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const results = {};

// Fills the provider's login and consent pages until the browser leaves the provider.
async function completeAtProvider(page, login) {
  for (let i = 0; i < 10 && new URL(page.url()).origin === ISSUER; i += 1) {
    if (await page.locator('input[name="login"]').count()) {
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', 'any-password');
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    } else if (await page.locator('input[name="prompt"][value="consent"]').count()) {
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    } else {
      await page.waitForTimeout(100);
    }
  }
}

async function status(page, url) {
  const res = await page.goto(url);
  return { status: res.status(), body: await res.text() };
}

// Signs in at the provider but stops before our callback, so a scenario can alter or
// replay it: the last hops (consent POST → /auth/{uid} → callback) are redirects, which
// page.route cannot intercept, so they go through page.request (the context's cookies)
// without following redirects.
async function authorizeOnly(context, login, { nonce } = {}) {
  const page = await context.newPage();
  const start = await page.request.get(`${APP}/api/auth/google/start`, { maxRedirects: 0 });
  let authUrl = start.headers().location;
  if (nonce) {
    const u = new URL(authUrl);
    u.searchParams.set('nonce', nonce);
    authUrl = u.toString();
  }
  await page.goto(authUrl);
  for (let i = 0; i < 10; i += 1) {
    if (await page.locator('input[name="login"]').count()) {
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', 'any-password');
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    } else if (await page.locator('input[name="prompt"][value="consent"]').count()) {
      const action = await page.locator('form').getAttribute('action');
      let res = await page.request.post(action, { form: { prompt: 'consent' }, maxRedirects: 0 });
      for (let hop = 0; hop < 5 && res.status() >= 300 && res.status() < 400; hop += 1) {
        const next = new URL(res.headers().location, ISSUER).toString();
        if (next.startsWith(`${APP}/api/auth/google/callback`)) return { page, callback: next };
        res = await page.request.get(next, { maxRedirects: 0 });
      }
      throw new Error(`the provider did not redirect to the callback (${res.status()})`);
    } else {
      await page.waitForTimeout(100);
    }
  }
  throw new Error(`stuck at the provider: ${page.url()}`);
}

async function fullSignIn(login) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${APP}/api/auth/google/start`);
  await completeAtProvider(page, login);
  await page.waitForURL(`${LANDING}**`);
  const fragment = new URL(page.url()).hash.slice(1);
  await context.close();
  return { fragment };
}

try {
  results.signIn = await fullSignIn('priya@example.com');

  {
    const context = await browser.newContext();
    const { page, callback } = await authorizeOnly(context, 'priya@example.com');
    const forged = new URL(callback);
    forged.searchParams.set('state', 'forged-state-forged-state-forged-state-0000');
    results.badState = await status(page, forged.toString());
    const first = await status(page, callback);
    results.firstUse = { status: first.status };
    results.replay = await status(page, callback);
    await context.close();
  }

  {
    const context = await browser.newContext();
    const { page, callback } = await authorizeOnly(context, 'priya@example.com', { nonce: 'not-our-nonce' });
    results.wrongNonce = await status(page, callback);
    await context.close();
  }

  {
    const context = await browser.newContext();
    const { page, callback } = await authorizeOnly(context, 'unverified:ghost@example.com');
    results.unverified = await status(page, callback);
    await context.close();
  }

  const rotated = await fetch(`${ISSUER}/__rotate`, { method: 'POST' });
  results.rotatedKid = (await rotated.json()).kid;
  results.afterRotation = await fullSignIn('priya@example.com');
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
