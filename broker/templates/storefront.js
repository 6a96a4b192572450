/* Storefront SSO broker: the storefront script. Include it on every storefront page with
 *   <script src="{{ script_url }}" defer></script>
 * 1. Account linking: a click on any element with the attribute data-sso-link asks the
 *    storefront who is signed in (the Current Customer JWT, same origin) and takes the shopper
 *    to the broker's linking page. Nothing runs until a click.
 * 2. Following an IdP-side logout: after an SSO sign-in the landing URL carries a status
 *    token; the script keeps it, and at most every 15 seconds asks the broker whether that
 *    session is still alive (one small GET, no cookies). When the company ended it, the script
 *    signs the storefront out. No third-party code. */
(function () {
  "use strict";
  var START_URL = {{ start_url|tojson }};
  var STATUS_URL = {{ status_url|tojson }};
  var STOREFRONT = {{ storefront_url|tojson }};
  var CLIENT_ID = {{ client_id|tojson }};
  var PARAMETER = {{ status_parameter|tojson }};
  var CHECK_EVERY_MS = 15000;

  function post(token) {
    var form = document.createElement("form");
    form.method = "POST";
    form.action = START_URL;
    var field = document.createElement("input");
    field.type = "hidden";
    field.name = "customer_jwt";
    field.value = token;
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
  }

  function openLinking(event) {
    event.preventDefault();
    var url = STOREFRONT + "/customer/current.jwt?app_client_id=" + encodeURIComponent(CLIENT_ID);
    fetch(url, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("not signed in"); }
        return response.text();
      })
      .then(post)
      .catch(function () { window.location.href = STOREFRONT + "/login.php"; });
  }

  function bindLinking() {
    var elements = document.querySelectorAll("[data-sso-link]");
    for (var i = 0; i < elements.length; i++) { elements[i].addEventListener("click", openLinking); }
  }

  function storage(kind) {
    try { return window[kind]; } catch (e) { return null; }
  }

  function followLogout() {
    var local = storage("localStorage"), session = storage("sessionStorage");
    if (!local || !window.URL || !window.history) { return; }
    var here = new URL(window.location.href);
    var fresh = here.searchParams.get(PARAMETER);
    if (fresh) {
      local.setItem(PARAMETER, fresh);
      here.searchParams.delete(PARAMETER);
      window.history.replaceState(null, "", here.toString());
    }
    var token = local.getItem(PARAMETER);
    if (!token) { return; }
    var last = Number(session && session.getItem(PARAMETER + "-checked")) || 0;
    if (!fresh && Date.now() - last < CHECK_EVERY_MS) { return; }
    if (session) { session.setItem(PARAMETER + "-checked", String(Date.now())); }
    fetch(STATUS_URL + "?s=" + encodeURIComponent(token), { credentials: "omit", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status && status.active === false) {
          local.removeItem(PARAMETER);
          window.location.href = STOREFRONT + "/login.php?action=logout";
        }
      })
      .catch(function () { /* the broker unreachable: leave the shopper be */ });
  }

  function start() {
    bindLinking();
    followLogout();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
