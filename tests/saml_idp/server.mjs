// A real third-party SAML 2.0 identity provider for the broker's tests: samlify on 127.0.0.1.
//
// Input: one JSON document in the environment variable SAML_IDP_CONFIG:
//   {"port": 0,
//    "idp": {"entity_id_path": "/metadata", "sign_assertion": true, "sign_response": false,
//            "encrypt_assertion": false, "signature_algorithm": "rsa-sha256",
//            "want_authn_requests_signed": false, "want_logout_requests_signed": false,
//            "name_id_format": "emailAddress", "attributes": {...}, "time_offset_seconds": 0,
//            "assertion_lifetime_seconds": 300, "expose_key_for_tests": false},
//    "sp": {"entity_id": "...", "acs_url": "...", "slo_url": "...", "metadata_xml": "...",
//           "encryption_cert_pem": "...", "signing_cert_pem": "..."},
//    "users": {"<login>": {"email": "...", "first_name": "...", "last_name": "...",
//                          "groups": ["..."], "attributes": {"<name>": "value" | ["values"]}}}}
// Port 0 lets the OS pick a free port. The server listens first, then builds the IdP whose entity
// id is http://127.0.0.1:<port><entity_id_path>, then prints exactly one line to stdout:
//   {"metadata_url": ..., "entity_id": ..., "sso_url": ..., "slo_url": ..., "cert_pem": ...}
// ("key_pem" too, the IdP's private signing key, only when idp.expose_key_for_tests is true: tests
// that forge IdP-signed messages need it; a real IdP never lets it out)
// and serves until killed (SIGTERM and SIGINT close it and exit 0). Nothing else is written to
// stdout; diagnostics go to stderr (SAML_IDP_VERBOSE=1 adds one line per request).
//
// Endpoints:
//   GET  /metadata          IdP metadata: entity id, signing certificate, SSO and SLO endpoints
//                           (HTTP-Redirect and HTTP-POST both at /sso and /slo).
//   GET  /sso               AuthnRequest, HTTP-Redirect binding (SAMLRequest, RelayState, and
//                           SigAlg + Signature when want_authn_requests_signed): shows the login
//                           form (field "login", button "Sign in").
//   POST /sso               Either an AuthnRequest in the HTTP-POST binding (SAMLRequest field:
//                           shows the login form too) or the login form itself (fields
//                           "request_key" and "login"): answers an auto-submitting form that
//                           POSTs SAMLResponse (+ RelayState) to the SP's ACS. A login that is not
//                           a key of "users" gets a Response with status Responder/AuthnFailed and
//                           no assertion.
//   GET  /initiate?login=&relay_state=     IdP-initiated (unsolicited) Response, no InResponseTo.
//   GET|POST /slo           LogoutRequest from the SP (Redirect or POST) -> LogoutResponse to the
//                           SP's SLO endpoint (same binding when the SP has it); a LogoutResponse
//                           from the SP (the answer to /initiate-logout) -> a "Signed out" page.
//   GET  /initiate-logout?login=&binding=redirect|post&relay_state=
//                           IdP-initiated LogoutRequest to the SP's SLO endpoint (default: the
//                           Redirect binding when the SP has it, else POST).
//   GET  /events            JSON list of what happened (logins, logout requests and responses).
//
// Signing and encryption (the options change the XML):
//   sign_assertion     <ds:Signature> inside <saml:Assertion>, after its <saml:Issuer>
//   sign_response      <ds:Signature> inside <samlp:Response>, after its <saml:Issuer>
//                      (both may be on; with both off nothing is signed)
//   encrypt_assertion  the assertion (signed first when sign_assertion) becomes
//                      <saml:EncryptedAssertion> (data_encryption, default aes256-cbc; the key
//                      wrapped with key_encryption, default rsa-oaep-mgf1p, for the SP's
//                      encryption certificate); the response signature, if any, is made
//                      after the encryption, so it covers the EncryptedAssertion
//   data_encryption    aes128-cbc, aes256-cbc, aes128-gcm, aes256-gcm or tripledes-cbc
//   key_encryption     rsa-oaep-mgf1p or rsa-1_5
//   signature_algorithm rsa-sha256 (digest sha256), rsa-sha1 (digest sha1) or rsa-sha512
// Logout messages the IdP sends (LogoutRequest, LogoutResponse) are always signed: an XML
// signature in the POST binding, SigAlg + Signature query parameters in the Redirect binding.
//
// A fresh RSA key and self-signed certificate are generated at every start; nothing is stored.

import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { inspect } from 'node:util';

import { generateSelfSigned } from './x509.mjs';

const verbose = Boolean(process.env.SAML_IDP_VERBOSE);

// Stdout carries the one JSON line the harness reads; samlify and its schema validator print
// with console.* (the validator dumps every failed validation with console.debug), so all of that
// goes to stderr.
const toStderr = (...args) => {
  const text = args.map((a) => (typeof a === 'string' ? a : inspectValue(a))).join(' ');
  process.stderr.write(`${text}\n`);
};
const inspectValue = (value) => inspect(value, { depth: 4, breakLength: 120 });
console.log = toStderr;
console.info = toStderr;
console.warn = toStderr;
console.debug = toStderr;
console.error = toStderr;

function fail(message) {
  process.stderr.write(`saml test idp: ${message}\n`);
  process.exit(2);
}

let config;
try {
  config = JSON.parse(process.env.SAML_IDP_CONFIG ?? '');
} catch (err) {
  fail(`SAML_IDP_CONFIG must be a JSON document: ${err.message}`);
}
if (config === null || typeof config !== 'object') fail('SAML_IDP_CONFIG must be an object');
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const port = config.port ?? 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) fail('"port" must be an integer 0-65535');
const spConfig = config.sp;
if (!isObject(spConfig)) fail('"sp" must be an object');
const users = config.users ?? {};
if (!isObject(users)) fail('"users" must be an object mapping a login to its attributes');

const DEFAULT_ATTRIBUTES = {
  email: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  first_name: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname',
  last_name: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname',
  groups: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups',
};
const idpOptions = {
  entity_id_path: '/metadata',
  sign_assertion: true,
  sign_response: false,
  encrypt_assertion: false,
  signature_algorithm: 'rsa-sha256',
  data_encryption: 'aes256-cbc',
  key_encryption: 'rsa-oaep-mgf1p',
  want_authn_requests_signed: false,
  want_logout_requests_signed: false,
  name_id_format: 'emailAddress',
  attribute_name_format: 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
  time_offset_seconds: 0,
  assertion_lifetime_seconds: 300,
  expose_key_for_tests: false,
  ...(config.idp ?? {}),
};
// A misspelt option would silently leave the default in place: refuse unknown keys.
const IDP_KEYS = [
  'entity_id_path', 'sign_assertion', 'sign_response', 'encrypt_assertion', 'signature_algorithm',
  'data_encryption', 'key_encryption',
  'want_authn_requests_signed', 'want_logout_requests_signed', 'name_id_format', 'attributes',
  'attribute_name_format', 'time_offset_seconds', 'assertion_lifetime_seconds', 'expose_key_for_tests',
];
const SP_KEYS = ['entity_id', 'acs_url', 'slo_url', 'metadata_xml', 'encryption_cert_pem', 'signing_cert_pem'];
for (const [what, object, known] of [['idp', idpOptions, IDP_KEYS], ['sp', spConfig, SP_KEYS]]) {
  const unknown = Object.keys(object).filter((key) => !known.includes(key));
  if (unknown.length) fail(`${what}: unknown option(s) ${unknown.join(', ')} (known: ${known.join(', ')})`);
}
const attributeNames = { ...DEFAULT_ATTRIBUTES, ...(idpOptions.attributes ?? {}) };
for (const key of Object.keys(attributeNames)) {
  if (!Object.hasOwn(DEFAULT_ATTRIBUTES, key)) {
    fail(`idp.attributes: unknown key ${JSON.stringify(key)} (known: ${Object.keys(DEFAULT_ATTRIBUTES).join(', ')})`);
  }
}
if (typeof idpOptions.entity_id_path !== 'string' || !idpOptions.entity_id_path.startsWith('/')) {
  fail('idp.entity_id_path must be a path starting with "/"');
}

// The key and certificate are made in the background while samlify and the validator load, unless
// the harness hands over a pair an earlier IdP of the same test run made and announced:
// "key": {"private_key_pem": ..., "cert_pem": ...} (an RSA key costs more than the rest of a start).
function givenKeyMaterial(key) {
  if (!isObject(key) || typeof key.private_key_pem !== 'string' || typeof key.cert_pem !== 'string') {
    fail('"key" must be an object with "private_key_pem" and "cert_pem"');
  }
  const certBase64 = key.cert_pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return { privateKeyPem: key.private_key_pem, certPem: key.cert_pem, certBase64 };
}
const keyMaterial = config.key === undefined
  ? generateSelfSigned({ commonName: 'samlify test IdP' })
  : Promise.resolve(givenKeyMaterial(config.key));

const samlify = (await import('samlify')).default;
const validator = await import('@authenio/samlify-xmllint-wasm');
// Every incoming SAML message is checked against the SAML 2.0 XML schemas (libxml2 compiled to
// WebAssembly; no Java, no native build).
samlify.setSchemaValidator({ validate: (xml) => validator.validate(xml) });
const { SamlLib, Utility, Constants } = samlify;

const BINDING = {
  redirect: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
  post: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
};
const SIGNATURE_ALGORITHMS = {
  'rsa-sha1': 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  'rsa-sha256': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'rsa-sha512': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
};
const XMLENC = 'http://www.w3.org/2001/04/xmlenc#';
const DATA_ENCRYPTIONS = {
  'aes128-cbc': `${XMLENC}aes128-cbc`,
  'aes256-cbc': `${XMLENC}aes256-cbc`,
  'aes128-gcm': 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'aes256-gcm': 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'tripledes-cbc': `${XMLENC}tripledes-cbc`,
};
const KEY_ENCRYPTIONS = {
  'rsa-oaep-mgf1p': `${XMLENC}rsa-oaep-mgf1p`,
  'rsa-1_5': `${XMLENC}rsa-1_5`,
};
const NAME_ID_FORMATS = {
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
};
const signatureAlgorithm = SIGNATURE_ALGORITHMS[idpOptions.signature_algorithm];
if (!signatureAlgorithm) {
  fail(`idp.signature_algorithm must be one of ${Object.keys(SIGNATURE_ALGORITHMS).join(', ')}`);
}
const dataEncryption = DATA_ENCRYPTIONS[idpOptions.data_encryption];
if (!dataEncryption) fail(`idp.data_encryption must be one of ${Object.keys(DATA_ENCRYPTIONS).join(', ')}`);
const keyEncryption = KEY_ENCRYPTIONS[idpOptions.key_encryption];
if (!keyEncryption) fail(`idp.key_encryption must be one of ${Object.keys(KEY_ENCRYPTIONS).join(', ')}`);
const nameIdFormat = NAME_ID_FORMATS[idpOptions.name_id_format];
if (!nameIdFormat) fail(`idp.name_id_format must be one of ${Object.keys(NAME_ID_FORMATS).join(', ')}`);

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const base = `http://127.0.0.1:${server.address().port}`;
const entityId = `${base}${idpOptions.entity_id_path}`;
const metadataUrl = `${base}/metadata`;
const ssoUrl = `${base}/sso`;
const sloUrl = `${base}/slo`;

const { privateKeyPem, certPem, certBase64 } = await keyMaterial;

const idp = samlify.IdentityProvider({
  entityID: entityId,
  signingCert: certPem,
  privateKey: privateKeyPem,
  wantAuthnRequestsSigned: Boolean(idpOptions.want_authn_requests_signed),
  wantLogoutRequestSigned: Boolean(idpOptions.want_logout_requests_signed),
  requestSignatureAlgorithm: signatureAlgorithm,
  isAssertionEncrypted: Boolean(idpOptions.encrypt_assertion),
  dataEncryptionAlgorithm: dataEncryption,
  keyEncryptionAlgorithm: keyEncryption,
  nameIDFormat: [nameIdFormat],
  singleSignOnService: [
    { Binding: BINDING.redirect, Location: ssoUrl },
    { Binding: BINDING.post, Location: ssoUrl },
  ],
  singleLogoutService: [
    { Binding: BINDING.redirect, Location: sloUrl },
    { Binding: BINDING.post, Location: sloUrl },
  ],
});

// -- the service provider ------------------------------------------------------------------------

function spEntity() {
  const common = {
    // The IdP's options decide what is signed, whatever the SP's metadata asks for (see below).
    wantMessageSigned: Boolean(idpOptions.sign_response),
    // Logout messages sent to the SP are always signed.
    wantLogoutRequestSigned: true,
    wantLogoutResponseSigned: true,
  };
  if (spConfig.metadata_xml) {
    return samlify.ServiceProvider({ ...common, metadata: String(spConfig.metadata_xml) });
  }
  for (const field of ['entity_id', 'acs_url']) {
    if (typeof spConfig[field] !== 'string' || !spConfig[field]) {
      fail(`sp.${field} is required unless sp.metadata_xml is given`);
    }
  }
  const slo = spConfig.slo_url
    ? [{ Binding: BINDING.redirect, Location: spConfig.slo_url }, { Binding: BINDING.post, Location: spConfig.slo_url }]
    : [];
  return samlify.ServiceProvider({
    ...common,
    entityID: spConfig.entity_id,
    assertionConsumerService: [{ Binding: BINDING.post, Location: spConfig.acs_url }],
    singleLogoutService: slo,
    authnRequestsSigned: Boolean(spConfig.signing_cert_pem),
    wantAssertionsSigned: Boolean(idpOptions.sign_assertion),
    ...(spConfig.signing_cert_pem ? { signingCert: spConfig.signing_cert_pem } : {}),
    ...(spConfig.encryption_cert_pem ? { encryptCert: spConfig.encryption_cert_pem } : {}),
  });
}

let sp;
try {
  sp = spEntity();
} catch (err) {
  fail(`sp: cannot build the service provider: ${err.message}`);
}
const spMeta = sp.entityMeta;
// samlify signs the assertion when the SP's metadata says WantAssertionsSigned="true" and signs the
// whole response when the SP entity has wantMessageSigned OR does not want signed assertions. The
// IdP's options are what the tests set, so they win over the SP's metadata here.
spMeta.isWantAssertionsSigned = () => Boolean(idpOptions.sign_assertion);
// Certificates given as PEM override (or complete) the SP's metadata.
const originalGetCert = spMeta.getX509Certificate.bind(spMeta);
spMeta.getX509Certificate = (use) => {
  if (use === 'encryption' && spConfig.encryption_cert_pem) return Utility.normalizeCerString(spConfig.encryption_cert_pem);
  if (use === 'signing' && spConfig.signing_cert_pem) return Utility.normalizeCerString(spConfig.signing_cert_pem);
  return originalGetCert(use);
};
const spEntityId = spMeta.getEntityID();
const acsUrl = (() => {
  const acs = spMeta.getAssertionConsumerService('post');
  return typeof acs === 'string' ? acs : null;
})();
if (!spEntityId) fail('sp: no entity id');
if (!acsUrl) fail('sp: no AssertionConsumerService with the HTTP-POST binding');
if (idpOptions.encrypt_assertion && !spMeta.getX509Certificate('encryption')) {
  fail('idp.encrypt_assertion needs sp.encryption_cert_pem (or an encryption certificate in sp.metadata_xml)');
}
if ((idpOptions.want_authn_requests_signed || idpOptions.want_logout_requests_signed)
    && !spMeta.getX509Certificate('signing')) {
  fail('verifying signed requests needs sp.signing_cert_pem (or a signing certificate in sp.metadata_xml)');
}

/** The SP's SingleLogoutService for a binding ("redirect" or "post"), or null. */
function spSloFor(binding) {
  let services = spMeta.meta.singleLogoutService ?? [];
  if (!Array.isArray(services)) services = [services];
  const found = services.find((s) => s && s.binding === BINDING[binding]);
  return found ? found.location : null;
}

// -- state ---------------------------------------------------------------------------------------

const pendingRequests = new Map(); // request_key -> {id, relayState, issuedAt}
const sessions = new Map(); // sessionIndex -> {login, nameId}
const events = [];
const PENDING_LIMIT = 1000;

function record(event) {
  events.push({ at: new Date().toISOString(), ...event });
  if (events.length > 1000) events.shift();
}

const newId = () => `_${randomBytes(20).toString('hex')}`;

function instant(offsetSeconds = 0) {
  const ms = Date.now() + (Number(idpOptions.time_offset_seconds) + offsetSeconds) * 1000;
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function nameIdFor(login, user) {
  switch (idpOptions.name_id_format) {
    case 'emailAddress':
      return String(user.email ?? '');
    case 'persistent':
      return createHash('sha256').update(`${entityId}|${spEntityId}|${login}`).digest('hex').slice(0, 40);
    case 'transient':
      return newId();
    default:
      return login;
  }
}

// -- XML -----------------------------------------------------------------------------------------

const escapeXml = (value) => String(value).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;',
})[c]);
const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function attributeStatement(user) {
  const values = {
    email: user.email,
    first_name: user.first_name,
    last_name: user.last_name,
    groups: user.groups,
  };
  const attributes = [];
  for (const [key, name] of Object.entries(attributeNames)) {
    if (!name || values[key] === undefined || values[key] === null) continue;
    attributes.push([name, values[key]]);
  }
  for (const [name, value] of Object.entries(user.attributes ?? {})) attributes.push([name, value]);
  if (attributes.length === 0) return '';
  const xml = attributes.map(([name, value]) => {
    const list = Array.isArray(value) ? value : [value];
    const items = list.map((v) => `<saml:AttributeValue xsi:type="xs:string">${escapeXml(v)}</saml:AttributeValue>`).join('');
    return `<saml:Attribute Name="${escapeXml(name)}" NameFormat="${escapeXml(idpOptions.attribute_name_format)}">${items}</saml:Attribute>`;
  }).join('');
  return `<saml:AttributeStatement>${xml}</saml:AttributeStatement>`;
}

const RESPONSE_TEMPLATE = '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" InResponseTo="{InResponseTo}">'
  + '<saml:Issuer>{Issuer}</saml:Issuer>'
  + '<samlp:Status><samlp:StatusCode Value="{StatusCode}"/></samlp:Status>'
  + '<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="{AssertionID}" Version="2.0" IssueInstant="{IssueInstant}">'
  + '<saml:Issuer>{Issuer}</saml:Issuer>'
  + '<saml:Subject><saml:NameID Format="{NameIDFormat}">{NameID}</saml:NameID>'
  + '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{NotOnOrAfter}" Recipient="{Recipient}" InResponseTo="{InResponseTo}"/></saml:SubjectConfirmation></saml:Subject>'
  + '<saml:Conditions NotBefore="{NotBefore}" NotOnOrAfter="{NotOnOrAfter}"><saml:AudienceRestriction><saml:Audience>{Audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>'
  + '<saml:AuthnStatement AuthnInstant="{IssueInstant}" SessionIndex="{SessionIndex}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>'
  + '{AttributeStatement}'
  + '</saml:Assertion></samlp:Response>';

const FAILURE_TEMPLATE = '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" InResponseTo="{InResponseTo}">'
  + '<saml:Issuer>{Issuer}</saml:Issuer>'
  + '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"/></samlp:StatusCode>'
  + '<samlp:StatusMessage>{StatusMessage}</samlp:StatusMessage></samlp:Status>'
  + '</samlp:Response>';

/** The login Response's XML before any signature or encryption. */
function responseXml({ inResponseTo, nameId, user, sessionIndex }) {
  const xml = SamlLib.replaceTagsByValue(RESPONSE_TEMPLATE, {
    ID: newId(),
    AssertionID: newId(),
    IssueInstant: instant(),
    Destination: acsUrl,
    Recipient: acsUrl,
    // undefined drops the attribute: an unsolicited response has no InResponseTo at all.
    InResponseTo: inResponseTo || undefined,
    Issuer: entityId,
    StatusCode: Constants.StatusCode.Success,
    NameIDFormat: nameIdFormat,
    NameID: nameId,
    NotBefore: instant(-5),
    NotOnOrAfter: instant(Number(idpOptions.assertion_lifetime_seconds)),
    Audience: spEntityId,
    SessionIndex: sessionIndex,
  });
  return xml.replace('{AttributeStatement}', attributeStatement(user));
}

function signMessage(xml, rootName) {
  return SamlLib.constructSAMLSignature({
    rawSamlMessage: xml,
    isMessageSigned: true,
    isBase64Output: false,
    privateKey: privateKeyPem,
    signatureAlgorithm,
    signingCert: certBase64,
    signatureConfig: {
      prefix: 'ds',
      location: { reference: `/*[local-name(.)='${rootName}']/*[local-name(.)='Issuer']`, action: 'after' },
    },
  });
}

/** Base64 SAMLResponse for a successful login. */
async function loginResponse({ inResponseTo, login, user, relayState }) {
  const sessionIndex = newId();
  const nameId = nameIdFor(login, user); // once: a transient NameID is new at each call
  const raw = responseXml({ inResponseTo, nameId, user, sessionIndex });
  let context;
  if (idpOptions.sign_assertion || idpOptions.sign_response) {
    // samlify's own pipeline: sign the assertion (SP "wants" it) -> encrypt (IdP setting) ->
    // sign the response (SP entity's wantMessageSigned). encryptThenSign keeps the response
    // signature valid when the assertion is encrypted.
    const result = await idp.createLoginResponse(sp, null, 'post', user, {
      customTagReplacement: () => ({ id: newId(), context: raw }),
      encryptThenSign: true,
      relayState,
    });
    context = result.context;
  } else {
    // samlify always signs something (the response when the assertion is not signed): a fully
    // unsigned response is made here, with samlify's encryption when asked for.
    context = idpOptions.encrypt_assertion
      ? await SamlLib.encryptAssertion(idp, sp, raw)
      : Utility.base64Encode(raw);
  }
  sessions.set(sessionIndex, { login, nameId });
  record({ type: 'login', login, in_response_to: inResponseTo ?? null, session_index: sessionIndex });
  return context;
}

/** Base64 SAMLResponse refusing the login (status Responder / AuthnFailed, no assertion). */
function failureResponse({ inResponseTo, message }) {
  let xml = SamlLib.replaceTagsByValue(FAILURE_TEMPLATE, {
    ID: newId(),
    IssueInstant: instant(),
    Destination: acsUrl,
    InResponseTo: inResponseTo || undefined,
    Issuer: entityId,
    StatusMessage: message,
  });
  if (idpOptions.sign_assertion || idpOptions.sign_response) xml = signMessage(xml, 'Response');
  record({ type: 'login_refused', in_response_to: inResponseTo ?? null, message });
  return Utility.base64Encode(xml);
}

// -- HTTP ----------------------------------------------------------------------------------------

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...headers });
  res.end(body);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>\n<body>${body}</body></html>\n`;
}

function sendError(res, status, message) {
  process.stderr.write(`saml test idp: ${status}: ${message}\n`);
  send(res, status, 'text/html; charset=utf-8', page('SAML error', `<h1>SAML error</h1><p id="error">${escapeHtml(message)}</p>`));
}

/** The auto-submitting page of the HTTP-POST binding. */
function autoPost(res, action, fields) {
  const inputs = Object.entries(fields)
    .filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
  send(res, 200, 'text/html; charset=utf-8', page('Continue', `
<form id="saml-post" method="post" action="${escapeHtml(action)}">
${inputs}
<noscript><button type="submit">Continue</button></noscript>
</form>
<script>document.getElementById('saml-post').submit();</script>`));
}

function loginForm(res, requestKey, notice = '') {
  send(res, 200, 'text/html; charset=utf-8', page('Sign in', `
<h1>Sign in to the test IdP</h1>${notice ? `<p id="notice">${escapeHtml(notice)}</p>` : ''}
<form id="login-form" method="post" action="/sso">
<input type="hidden" name="request_key" value="${escapeHtml(requestKey)}">
<label>Login <input type="text" name="login" autofocus autocomplete="username"></label>
<button type="submit">Sign in</button>
</form>`));
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1024 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The query of a Redirect-binding message, decoded, and the octet string its signature covers
 * (SAMLRequest|SAMLResponse, RelayState, SigAlg as they were URL-encoded in the request).
 */
function redirectRequest(rawQuery, param) {
  const raw = new Map();
  for (const pair of rawQuery.split('&')) {
    const at = pair.indexOf('=');
    if (at > 0) raw.set(pair.slice(0, at), pair.slice(at + 1));
  }
  const octetString = [param, 'RelayState', 'SigAlg']
    .filter((key) => raw.has(key))
    .map((key) => `${key}=${raw.get(key)}`)
    .join('&');
  return { query: Object.fromEntries(new URLSearchParams(rawQuery)), octetString };
}

/** An error from samlify, with what its bare codes mean. */
function explain(err) {
  const message = String(err?.message ?? err);
  if (message === 'ERR_INVALID_XML' || message === 'ERR_EXCEPTION_VALIDATE_XML') {
    return `${message} (not well-formed, or not valid against the SAML 2.0 schema: the validator's errors are on the IdP's stderr)`;
  }
  if (message === 'ERR_MISSING_SIG_ALG') return `${message} (unsigned, but the IdP wants it signed)`;
  return message;
}

function checkIssuer(extract, what) {
  if (extract?.issuer !== spEntityId) {
    throw new Error(`${what} Issuer ${JSON.stringify(extract?.issuer)} is not the SP ${JSON.stringify(spEntityId)}`);
  }
}

async function acceptAuthnRequest(res, binding, request) {
  let parsed;
  try {
    parsed = await idp.parseLoginRequest(sp, binding, request);
  } catch (err) {
    return sendError(res, 400, `AuthnRequest refused: ${explain(err)}`);
  }
  const { extract } = parsed;
  try {
    checkIssuer(extract, 'AuthnRequest');
  } catch (err) {
    return sendError(res, 400, err.message);
  }
  const id = extract?.request?.id;
  if (!id) return sendError(res, 400, 'AuthnRequest without ID');
  const destination = extract.request.destination;
  if (destination && destination !== ssoUrl) {
    return sendError(res, 400, `AuthnRequest Destination ${destination} is not ${ssoUrl}`);
  }
  const requestedAcs = extract.request.assertionConsumerServiceUrl;
  if (requestedAcs && requestedAcs !== acsUrl) {
    return sendError(res, 400, `AuthnRequest AssertionConsumerServiceURL ${requestedAcs} is not the SP's ${acsUrl}`);
  }
  const relayState = (binding === 'redirect' ? request.query.RelayState : request.body.RelayState) ?? '';
  const requestKey = randomBytes(16).toString('hex');
  pendingRequests.set(requestKey, { id, relayState });
  if (pendingRequests.size > PENDING_LIMIT) pendingRequests.delete(pendingRequests.keys().next().value);
  record({ type: 'authn_request', id, binding, signed: Boolean(parsed.sigAlg || extract.signature) });
  return loginForm(res, requestKey);
}

async function submitLogin(res, form) {
  const pending = pendingRequests.get(form.get('request_key') ?? '');
  if (!pending) return sendError(res, 400, 'unknown or used request_key: start again from the SP');
  pendingRequests.delete(form.get('request_key'));
  const login = form.get('login') ?? '';
  if (!Object.hasOwn(users, login)) {
    const message = `unknown login ${JSON.stringify(login)}`;
    return autoPost(res, acsUrl, {
      SAMLResponse: failureResponse({ inResponseTo: pending.id, message }),
      RelayState: pending.relayState,
    });
  }
  const context = await loginResponse({
    inResponseTo: pending.id, login, user: users[login], relayState: pending.relayState,
  });
  return autoPost(res, acsUrl, { SAMLResponse: context, RelayState: pending.relayState });
}

async function initiate(res, params) {
  const login = params.get('login') ?? '';
  if (!Object.hasOwn(users, login)) return sendError(res, 400, `unknown login ${JSON.stringify(login)}`);
  const relayState = params.get('relay_state') ?? '';
  const context = await loginResponse({ inResponseTo: null, login, user: users[login], relayState });
  return autoPost(res, acsUrl, { SAMLResponse: context, RelayState: relayState });
}

/** Send a logout message to the SP in `binding`, or the other binding if the SP lacks it. */
function sendLogoutMessage(res, preferred, build) {
  const binding = spSloFor(preferred) ? preferred : (['redirect', 'post'].find((b) => spSloFor(b)) ?? null);
  if (!binding) return sendError(res, 400, 'the SP has no SingleLogoutService (set sp.slo_url)');
  const destination = spSloFor(binding);
  const message = build(binding, destination);
  if (binding === 'redirect') {
    res.writeHead(302, { Location: message.context, 'Cache-Control': 'no-store' });
    return res.end();
  }
  return autoPost(res, destination, { [message.type]: message.context, RelayState: message.relayState });
}

const LOGOUT_RESPONSE_TEMPLATE = '<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" InResponseTo="{InResponseTo}"><saml:Issuer>{Issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{StatusCode}"/></samlp:Status></samlp:LogoutResponse>';
const LOGOUT_REQUEST_TEMPLATE = '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" NotOnOrAfter="{NotOnOrAfter}"><saml:Issuer>{Issuer}</saml:Issuer><saml:NameID Format="{NameIDFormat}">{NameID}</saml:NameID><samlp:SessionIndex>{SessionIndex}</samlp:SessionIndex></samlp:LogoutRequest>';

async function acceptLogoutRequest(res, binding, request) {
  let parsed;
  try {
    parsed = await idp.parseLogoutRequest(sp, binding, request);
    checkIssuer(parsed.extract, 'LogoutRequest');
  } catch (err) {
    return sendError(res, 400, `LogoutRequest refused: ${explain(err)}`);
  }
  const { extract } = parsed;
  const nameId = extract?.nameID;
  const requestedIndexes = [extract?.sessionIndex ?? []].flat().filter(Boolean);
  const ended = [];
  for (const [index, session] of sessions) {
    if (session.nameId === nameId && (requestedIndexes.length === 0 || requestedIndexes.includes(index))) {
      sessions.delete(index);
      ended.push(index);
    }
  }
  record({ type: 'logout_request', binding, id: extract?.request?.id, name_id: nameId, ended_sessions: ended });
  const relayState = (binding === 'redirect' ? request.query.RelayState : request.body.RelayState) ?? '';
  return sendLogoutMessage(res, binding, (out, destination) => idp.createLogoutResponse(sp, parsed, out, {
    relayState,
    customTagReplacement: () => ({
      id: newId(),
      context: SamlLib.replaceTagsByValue(LOGOUT_RESPONSE_TEMPLATE, {
        ID: newId(),
        IssueInstant: instant(),
        Destination: destination,
        InResponseTo: extract?.request?.id,
        Issuer: entityId,
        StatusCode: Constants.StatusCode.Success,
      }),
    }),
  }));
}

async function acceptLogoutResponse(res, binding, request) {
  // The SP's answer to /initiate-logout. Its signature is verified when it has one and the SP's
  // signing certificate is known; samlify itself refuses any status but Success, so the status
  // is read here first and a refusal is recorded rather than turned into an error page.
  let xml;
  try {
    xml = binding === 'redirect'
      ? Utility.inflateString(request.query.SAMLResponse)
      : Buffer.from(request.body.SAMLResponse, 'base64').toString('utf8');
  } catch (err) {
    return sendError(res, 400, `LogoutResponse cannot be decoded: ${err?.message ?? err}`);
  }
  const status = /<(?:\w+:)?StatusCode\s[^>]*Value="([^"]*)"/.exec(xml)?.[1] ?? null;
  const signed = binding === 'redirect'
    ? Boolean(request.query.Signature)
    : /<(?:\w+:)?Signature[\s>]/.test(xml);
  const verify = signed && Boolean(spMeta.getX509Certificate('signing'));
  idp.entitySetting.wantLogoutResponseSigned = verify;
  let parsed = null;
  let error = null;
  try {
    parsed = await idp.parseLogoutResponse(sp, binding, request);
    checkIssuer(parsed.extract, 'LogoutResponse');
  } catch (err) {
    error = explain(err);
    if (!error.startsWith('ERR_FAILED_STATUS')) return sendError(res, 400, `LogoutResponse refused: ${error}`);
  }
  const inResponseTo = parsed?.extract?.response?.inResponseTo
    ?? /\sInResponseTo="([^"]*)"/.exec(xml)?.[1] ?? null;
  record({ type: 'logout_response', binding, in_response_to: inResponseTo, status, signed, verified: verify && !error });
  const success = status === Constants.StatusCode.Success;
  return send(res, 200, 'text/html; charset=utf-8', page(
    success ? 'Signed out' : 'Sign-out failed',
    `<h1>${success ? 'Signed out' : 'Sign-out failed'}</h1><p id="status">${escapeHtml(status ?? '')}</p>`,
  ));
}

function initiateLogout(res, params) {
  const login = params.get('login') ?? '';
  if (!Object.hasOwn(users, login)) return sendError(res, 400, `unknown login ${JSON.stringify(login)}`);
  const own = [...sessions].filter(([, session]) => session.login === login);
  const indexes = own.map(([index]) => index);
  // The NameID of the last session (a transient one differs at each login), else a fresh one.
  const nameId = own.at(-1)?.[1].nameId ?? nameIdFor(login, users[login]);
  const preferred = params.get('binding') === 'post' ? 'post' : 'redirect';
  const relayState = params.get('relay_state') ?? '';
  for (const index of indexes) sessions.delete(index);
  return sendLogoutMessage(res, preferred, (binding, destination) => {
    const id = newId();
    record({ type: 'logout_request_sent', binding, id, login, session_indexes: indexes });
    return idp.createLogoutRequest(sp, binding, { logoutNameID: nameId }, {
      relayState,
      customTagReplacement: () => ({
        id,
        context: SamlLib.replaceTagsByValue(LOGOUT_REQUEST_TEMPLATE, {
          ID: id,
          IssueInstant: instant(),
          NotOnOrAfter: instant(Number(idpOptions.assertion_lifetime_seconds)),
          Destination: destination,
          Issuer: entityId,
          NameIDFormat: nameIdFormat,
          NameID: nameId,
          // The last session of that login (undefined drops the element when there is none).
          SessionIndex: indexes.at(-1),
        }),
      }),
    });
  });
}

async function handle(req, res) {
  const url = new URL(req.url, base);
  const rawQuery = url.search.startsWith('?') ? url.search.slice(1) : '';
  const path = url.pathname;
  if (verbose) process.stderr.write(`saml test idp: ${req.method} ${path}\n`);

  if (req.method === 'GET' && (path === '/metadata' || path === idpOptions.entity_id_path)) {
    return send(res, 200, 'application/samlmetadata+xml; charset=utf-8', idp.getMetadata());
  }
  if (req.method === 'GET' && path === '/events') {
    return send(res, 200, 'application/json', JSON.stringify(events));
  }
  if (path === '/sso' && req.method === 'GET') {
    if (!url.searchParams.has('SAMLRequest')) return sendError(res, 400, 'no SAMLRequest');
    return acceptAuthnRequest(res, 'redirect', redirectRequest(rawQuery, 'SAMLRequest'));
  }
  if (path === '/sso' && req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    if (form.has('SAMLRequest')) return acceptAuthnRequest(res, 'post', { body: Object.fromEntries(form) });
    return submitLogin(res, form);
  }
  if (path === '/initiate' && req.method === 'GET') return initiate(res, url.searchParams);
  if (path === '/slo' && (req.method === 'GET' || req.method === 'POST')) {
    if (req.method === 'GET') {
      if (url.searchParams.has('SAMLRequest')) {
        return acceptLogoutRequest(res, 'redirect', redirectRequest(rawQuery, 'SAMLRequest'));
      }
      if (url.searchParams.has('SAMLResponse')) {
        return acceptLogoutResponse(res, 'redirect', redirectRequest(rawQuery, 'SAMLResponse'));
      }
      return sendError(res, 400, 'no SAMLRequest or SAMLResponse');
    }
    const body = Object.fromEntries(new URLSearchParams(await readBody(req)));
    if (body.SAMLRequest) return acceptLogoutRequest(res, 'post', { body });
    if (body.SAMLResponse) return acceptLogoutResponse(res, 'post', { body });
    return sendError(res, 400, 'no SAMLRequest or SAMLResponse');
  }
  if (path === '/initiate-logout' && req.method === 'GET') return initiateLogout(res, url.searchParams);
  return send(res, 404, 'text/plain', 'not found\n');
}

server.on('request', (req, res) => {
  handle(req, res).catch((err) => {
    process.stderr.write(`saml test idp: ${req.method} ${req.url}: ${err?.stack ?? err}\n`);
    if (!res.headersSent) sendError(res, 500, String(err?.message ?? err));
    else res.end();
  });
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

process.stdout.write(`${JSON.stringify({
  metadata_url: metadataUrl, entity_id: entityId, sso_url: ssoUrl, slo_url: sloUrl, cert_pem: certPem,
  ...(idpOptions.expose_key_for_tests === true ? { key_pem: privateKeyPem } : {}),
})}\n`);
