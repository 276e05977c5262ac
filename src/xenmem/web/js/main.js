// The page's entry: sign in (or resume this tab's session), then run the dashboard until
// the session ends.

import { Dashboard } from "./dashboard.js";
import { Session, XenAPIError } from "./rpc.js";
import { installTooltip } from "./tooltip.js";

const SESSION_KEY = "xenmem.session";
const login = document.querySelector("#login");
const dashboard = document.querySelector("#dashboard");
const logout = document.querySelector("#logout");
const status = document.querySelector("#status");
let current = null;

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function showLogin(message) {
  current = null;
  sessionStorage.removeItem(SESSION_KEY);
  dashboard.hidden = true;
  logout.hidden = true;
  login.hidden = false;
  login.querySelector(".error").textContent = message;
  login.elements.password.value = "";
  login.elements.password.focus();
  setStatus("offline", "");
  document.querySelector("#pool").textContent = "";
}

async function run(session) {
  sessionStorage.setItem(SESSION_KEY, session.ref);
  login.hidden = true;
  dashboard.hidden = false;
  logout.hidden = false;
  setStatus("trouble", "Connecting…");
  current = new Dashboard(session, { page: document, onStatus: setStatus });
  const running = current;
  try {
    await running.run();
  } catch (error) {
    if (current === running) {
      showLogin(
        running.ended ??
          (error.code === "SESSION_INVALID" ? "The session has ended: sign in again." : ""),
      );
    }
  }
}

login.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = login.querySelector("button");
  button.disabled = true;
  login.querySelector(".error").textContent = "";
  try {
    const session = await Session.login(login.elements.user.value, login.elements.password.value);
    run(session);
  } catch (error) {
    const failed = error instanceof XenAPIError && error.code === "SESSION_AUTHENTICATION_FAILED";
    login.querySelector(".error").textContent = failed
      ? "Wrong user name or password."
      : error.message;
  } finally {
    button.disabled = false;
  }
});

logout.addEventListener("click", () => {
  const ending = current;
  showLogin("");
  // The page has forgotten the session already; a server that cannot be told lets it expire.
  ending?.session.logout().catch(() => {});
});

installTooltip(document.querySelector("#tooltip"));
const resumed = sessionStorage.getItem(SESSION_KEY);
if (resumed === null) {
  showLogin("");
} else {
  run(new Session(resumed));
}
