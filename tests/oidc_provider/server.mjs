// A real third-party OpenID provider for the broker's tests: node oidc-provider on 127.0.0.1.
//
// Input: one JSON document in the environment variable OIDC_PROVIDER_CONFIG:
//   {"port": 0, "clients": [<oidc-provider client metadata>, ...], "accounts": {"<sub>": {<claims>}}}
// Port 0 lets the OS pick a free port. The server listens first, then builds the Provider with the
// issuer http://127.0.0.1:<actual port>, then prints exactly one line to stdout:
//   {"issuer": "http://127.0.0.1:NNNN"}
// and serves until killed (SIGTERM and SIGINT close it and exit 0). Nothing else is written to
// stdout; diagnostics go to stderr. Set OIDC_PROVIDER_VERBOSE=1 to see oidc-provider's own notices.
//
// Behaviour the tests rely on:
// - devInteractions: the login form takes any login name and ignores the password; the login name
//   is the account id (sub). A login that is not a key of "accounts" is refused: the client gets
//   error=access_denied at its redirect_uri, and the next attempt shows the login form again.
// - Consent is never asked: loadExistingGrant grants every scope and claim the request asks for.
// - PKCE is required for every client (S256 is the only method oidc-provider 9 offers).
// - Claims: openid -> sub; email -> email, email_verified; profile -> name, given_name,
//   family_name; groups -> groups. They are put in the ID token too (conformIdTokenClaims off).
// - RP-initiated logout (end_session_endpoint) and back-channel logout are on; outgoing requests
//   (back-channel logout, jwks_uri, ...) may go to loopback addresses, see `fetch` below.
// - A fresh RS256 signing key is generated at every start; nothing is stored.
// - Web clients may register http://127.0.0.1:<port>/... redirect URIs as they are
//   (application_type "web" is the default; only the implicit flow would insist on https).

import { generateKeyPair } from 'node:crypto';
import { createServer } from 'node:http';

const verbose = Boolean(process.env.OIDC_PROVIDER_VERBOSE);

// oidc-provider prints its notices with console.info (stdout) and console.warn (stderr). Stdout
// carries the one JSON line the harness reads, so everything else goes to stderr, and the
// development-only notices that say nothing about the test at hand are dropped unless verbose.
const noise = [
  /development-only/,
  /Unsupported runtime/,
  /you SHOULD change it/,
  /experimental features/,
  /Acknowledging this feature/,
  /Breaking changes between experimental/,
  /disable this notice/,
];
const toStderr = (...args) => {
  const text = args.map(String).join(' ');
  if (!verbose && noise.some((re) => re.test(text))) return;
  process.stderr.write(`${text}\n`);
};
console.log = toStderr;
console.info = toStderr;
console.warn = toStderr;
console.debug = toStderr;

// The signing key is generated in the background while oidc-provider loads (both take a while).
const keyPair = new Promise((resolve, reject) => {
  generateKeyPair('rsa', { modulusLength: 2048 }, (err, publicKey, privateKey) => {
    if (err) reject(err);
    else resolve(privateKey);
  });
});

// Imported only now, so the notices it prints while loading are filtered too.
const { default: Provider, errors } = await import('oidc-provider');

function fail(message) {
  process.stderr.write(`oidc test provider: ${message}\n`);
  process.exit(2);
}

let config;
try {
  config = JSON.parse(process.env.OIDC_PROVIDER_CONFIG ?? '');
} catch (err) {
  fail(`OIDC_PROVIDER_CONFIG must be a JSON document: ${err.message}`);
}
if (config === null || typeof config !== 'object') fail('OIDC_PROVIDER_CONFIG must be an object');
const port = config.port ?? 0;
const clients = config.clients ?? [];
const accounts = config.accounts ?? {};
if (!Number.isInteger(port) || port < 0 || port > 65535) fail('"port" must be an integer 0-65535');
if (!Array.isArray(clients)) fail('"clients" must be a list of client metadata objects');
if (accounts === null || typeof accounts !== 'object' || Array.isArray(accounts)) {
  fail('"accounts" must be an object mapping a sub to its claims');
}

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const privateKey = await keyPair;
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };

const HOUR = 60 * 60;
const DAY = 24 * HOUR;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingKey] },

  async findAccount(ctx, id) {
    if (!Object.hasOwn(accounts, id)) {
      // An unknown login is refused: the authorization request ends with access_denied at the
      // client's redirect_uri, and the session forgets the login so that the next attempt shows
      // the login form again.
      const session = ctx?.oidc?.session;
      if (session?.accountId === id) {
        for (const key of ['accountId', 'loginTs', 'amr', 'acr']) delete session[key];
        throw new errors.AccessDenied(`unknown login ${JSON.stringify(id)}`);
      }
      return undefined;
    }
    const claims = accounts[id];
    return {
      accountId: id,
      async claims() {
        return { ...claims, sub: id };
      },
    };
  },

  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
    groups: ['groups'],
  },
  // Put the scope's claims in the ID token from the token endpoint too, not only in userinfo.
  conformIdTokenClaims: false,

  // Skip consent: grant whatever the authorization request asks for.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!grant) {
      grant = new oidc.provider.Grant({
        accountId: oidc.account.accountId,
        clientId: oidc.client.clientId,
      });
    }
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    const claims = [...oidc.requestParamClaims];
    if (claims.length) grant.addOIDCClaims(claims);
    await grant.save();
    return grant;
  },

  pkce: { required: () => true },

  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.type = 'html';
        ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Logout Request</title></head>
<body><h1>Do you want to sign-out from ${ctx.host}?</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button></body></html>`;
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign-out Success</title></head>'
          + '<body><h1>Sign-out Success</h1></body></html>';
      },
    },
    backchannelLogout: { enabled: true },
  },

  // oidc-provider 9 hands `fetch` a dispatcher that destroys connections to special-use addresses
  // (loopback, private ranges) against SSRF. The tests' relying parties live on 127.0.0.1, so the
  // dispatcher is dropped here; the 2.5 s timeout signal it sets is kept.
  fetch(url, options) {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },

  // Plain error page, echoed to stderr; the default one loads a web font from the internet.
  async renderError(ctx, out, error) {
    process.stderr.write(`oidc test provider: error page: ${JSON.stringify(out)}\n`);
    if (!(error instanceof errors.OIDCProviderError)) {
      process.stderr.write(`${error?.stack ?? error}\n`);
    }
    const escape = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>oops! something went wrong</title></head>
<body><h1>oops! something went wrong</h1>
${Object.entries(out).map(([k, v]) => `<pre><strong>${escape(k)}</strong>: ${escape(v)}</pre>`).join('\n')}
</body></html>`;
  },

  clientBasedCORS: () => true,
  ttl: {
    AccessToken: HOUR,
    AuthorizationCode: 60,
    IdToken: HOUR,
    Interaction: HOUR,
    RefreshToken: DAY,
    Session: DAY,
    Grant: DAY,
  },
});

// The built-in login page (devInteractions) also loads a web font from the internet: drop that, so
// a headless browser driving it stays on this machine.
provider.use(async (ctx, next) => {
  await next();
  if (typeof ctx.body === 'string' && ctx.response.is('html')) {
    ctx.body = ctx.body.replace(/@import url\(https:\/\/fonts\.googleapis\.com[^)]*\);?/g, '');
  }
});

for (const event of ['server_error', 'backchannel.error']) {
  provider.on(event, (...args) => {
    const err = args.find((arg) => arg instanceof Error);
    process.stderr.write(`oidc test provider: ${event}: ${err?.stack ?? err}\n`);
  });
}

// oidc-provider checks static client metadata only when a client is first used: check it now, so
// a bad client fails the start with a clear message instead of a 400 page in the middle of a test.
for (const client of clients) {
  try {
    if (!(await provider.Client.find(String(client.client_id)))) throw new Error('not found');
  } catch (err) {
    fail(`client ${JSON.stringify(client.client_id)} is invalid: ${err.error_description ?? err.message}`);
  }
}

server.on('request', provider.callback());

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
