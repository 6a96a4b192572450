/* Storefront SSO broker: account linking. Include on the storefront with
 *   <script src="{{ script_url }}" defer></script>
 * and give any link or button the attribute data-sso-link. A click asks the storefront who is
 * signed in (the Current Customer JWT, same origin) and takes the shopper to the broker's
 * linking page. No third-party code; nothing runs until a click. */
(function () {
  "use strict";
  var START_URL = {{ start_url|tojson }};
  var STOREFRONT = {{ storefront_url|tojson }};
  var CLIENT_ID = {{ client_id|tojson }};

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

  function open(event) {
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

  function bind() {
    var elements = document.querySelectorAll("[data-sso-link]");
    for (var i = 0; i < elements.length; i++) { elements[i].addEventListener("click", open); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})();
