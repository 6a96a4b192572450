/* Storefront SSO broker: the storefront script. Include it on every storefront page with
 *   <script src="{{ script_url }}" defer></script>
 * 1. Account linking: a click on any element with the attribute data-sso-link takes the
 *    shopper to the broker, which ties a one-time nonce to this browser and sends it back to
 *    this page; the script then asks the storefront who is signed in (the Current Customer
 *    JWT, same origin) and posts both to the broker's linking page. Nothing runs until a click.
 * 2. Following an IdP-side logout: after an SSO sign-in the landing URL carries a status
 *    token; the script keeps it once the broker confirms it is this customer's session, and
 *    at most every 15 seconds asks the broker whether that session is still alive (one small
 *    request, no cookies). When the company ended it, the script signs the storefront out;
 *    a token that is not this signed-in customer's is dropped, never acted on.
 * 3. The shopper's language: a link to the broker's sign-in (its /login URLs) gets
 *    ui_locales=<the page's html lang>, when the page has one and the link names none, so the
 *    broker's pages and the IdP speak the storefront's language; linking ("Manage company
 *    sign-in") carries it the same way, from its first step. No third-party code. */
(function () {
  "use strict";
  var START_URL = {{ start_url|tojson }};
  var LOGIN_URL = {{ login_url|tojson }};
  var NONCE_URL = {{ nonce_url|tojson }};
  var NONCE_FRAGMENT = {{ nonce_fragment|tojson }};
  var STATUS_URL = {{ status_url|tojson }};
  var STOREFRONT = {{ storefront_url|tojson }};
  var CLIENT_ID = {{ client_id|tojson }};
  var PARAMETER = {{ status_parameter|tojson }};
  var CHECK_EVERY_MS = 15000;

  function currentCustomerJwt() {
    var url = STOREFRONT + "/customer/current.jwt?app_client_id=" + encodeURIComponent(CLIENT_ID);
    return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
      if (!response.ok) { throw new Error("not signed in"); }
      return response.text();
    });
  }

  function post(token, nonce) {
    var form = document.createElement("form");
    form.method = "POST";
    form.action = START_URL;
    var fields = { customer_jwt: token, nonce: nonce };
    for (var name in fields) {
      var field = document.createElement("input");
      field.type = "hidden";
      field.name = name;
      field.value = fields[name];
      form.appendChild(field);
    }
    document.body.appendChild(form);
    form.submit();
  }

  function pathOnStore() {
    var here = window.location.href.split("#")[0];
    return here.indexOf(STOREFRONT + "/") === 0 ? here.slice(STOREFRONT.length) : "/";
  }

  function openLinking(event) {
    event.preventDefault();
    var joiner = NONCE_URL.indexOf("?") < 0 ? "?" : "&";
    var lang = (document.documentElement.getAttribute("lang") || "").trim();
    window.location.href = NONCE_URL + joiner + "return=" + encodeURIComponent(pathOnStore()) +
      (lang ? "&ui_locales=" + encodeURIComponent(lang) : "");
  }

  function continueLinking() {
    var match = new RegExp("(?:^#|&)" + NONCE_FRAGMENT + "=([A-Za-z0-9_-]+)").exec(window.location.hash);
    if (!match) { return false; }
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", window.location.href.split("#")[0]);
    }
    currentCustomerJwt()
      .then(function (token) { post(token, match[1]); })
      .catch(function () { window.location.href = STOREFRONT + "/login.php"; });
    return true;
  }

  function bindLinking() {
    var elements = document.querySelectorAll("[data-sso-link]");
    for (var i = 0; i < elements.length; i++) { elements[i].addEventListener("click", openLinking); }
  }

  /* The broker's sign-in URL ``url`` with the page's language as ui_locales, or null when it
   * is not one, already names one, or the page declares no language. */
  function withLocale(url) {
    var lang = (document.documentElement.getAttribute("lang") || "").trim();
    if (!lang || !window.URL || typeof url !== "string") { return null; }
    if (url.indexOf(LOGIN_URL) !== 0 || !/^($|[/?#])/.test(url.slice(LOGIN_URL.length))) { return null; }
    var target = new URL(url);
    if (target.searchParams.has("ui_locales")) { return null; }
    target.searchParams.set("ui_locales", lang);
    return target.toString();
  }

  function localise(link) {
    var changed = withLocale(link.href);
    if (changed) { link.setAttribute("href", changed); }
  }

  function bindLocale() {
    var elements = document.querySelectorAll("a[href]");
    for (var i = 0; i < elements.length; i++) { localise(elements[i]); }
    /* Links a theme adds later are localised on their way out. */
    document.addEventListener("click", function (event) {
      var link = event.target && event.target.closest ? event.target.closest("a[href]") : null;
      if (link) { localise(link); }
    }, true);
  }

  function storage(kind) {
    try { return window[kind]; } catch (e) { return null; }
  }

  /* The broker's answer: active true, false (this customer's session ended) or "unknown". */
  function ask(token, customerJwt) {
    var request;
    if (customerJwt) {
      var body = new URLSearchParams();
      body.set("s", token);
      body.set("customer_jwt", customerJwt);
      request = fetch(STATUS_URL, { method: "POST", body: body, credentials: "omit", cache: "no-store" });
    } else {
      request = fetch(STATUS_URL + "?s=" + encodeURIComponent(token), { credentials: "omit", cache: "no-store" });
    }
    return request.then(function (response) { return response.ok ? response.json() : null; });
  }

  function signOut(local) {
    local.removeItem(PARAMETER);
    window.location.href = STOREFRONT + "/login.php?action=logout";
  }

  /* Ask again with the storefront's word on who is signed in: only then does an ended
   * session sign the storefront out. */
  function decide(local, token) {
    return currentCustomerJwt().then(
      function (jwt) {
        return ask(token, jwt).then(function (answer) {
          if (!answer) { return; }
          if (answer.active === false) { signOut(local); } else if (answer.active !== true) { local.removeItem(PARAMETER); }
        });
      },
      function () { local.removeItem(PARAMETER); } /* nobody signed in: nothing to follow */
    );
  }

  function followLogout() {
    var local = storage("localStorage"), session = storage("sessionStorage");
    if (!local || !window.URL || !window.history) { return; }
    var here = new URL(window.location.href);
    var fresh = here.searchParams.get(PARAMETER);
    if (fresh) {
      here.searchParams.delete(PARAMETER);
      window.history.replaceState(null, "", here.toString());
      /* Kept only when it is this customer's live session: a link from elsewhere carrying
       * someone else's token changes nothing here. */
      currentCustomerJwt()
        .then(function (jwt) { return ask(fresh, jwt); })
        .then(function (answer) {
          if (answer && answer.active === true) { local.setItem(PARAMETER, fresh); }
          else if (answer && answer.active === false) { signOut(local); }
        })
        .catch(function () { /* not signed in, or the broker unreachable: keep what we had */ });
      return;
    }
    var token = local.getItem(PARAMETER);
    if (!token) { return; }
    var last = Number(session && session.getItem(PARAMETER + "-checked")) || 0;
    if (Date.now() - last < CHECK_EVERY_MS) { return; }
    if (session) { session.setItem(PARAMETER + "-checked", String(Date.now())); }
    ask(token, null)
      .then(function (answer) {
        if (answer && answer.active !== true) { return decide(local, token); }
      })
      .catch(function () { /* the broker unreachable: leave the shopper be */ });
  }

  function start() {
    bindLocale();
    bindLinking();
    continueLinking();
    followLogout();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
