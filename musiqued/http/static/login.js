// The login form: the token is sent once; the daemon answers with a session cookie.
const form = document.getElementById("login-form");
const problem = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.hidden = true;
  const token = document.getElementById("token").value;
  try {
    const response = await fetch("/api/v1/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
    });
    if (response.ok) {
      location.reload();
      return;
    }
    const body = await response.json().catch(() => ({}));
    problem.textContent = body.detail || `refused (HTTP ${response.status})`;
  } catch (error) {
    problem.textContent = `the daemon cannot be reached: ${error.message}`;
  }
  problem.hidden = false;
});
