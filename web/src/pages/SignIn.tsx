import { useState } from "preact/hooks";
import { api, auth, call } from "../api/client";
import { Form, str } from "../ui";

export function SignIn() {
  const [mode, setMode] = useState<"in" | "up">("in");
  const submit = async (d: FormData) => {
    const body = { email: str(d, "email"), password: String(d.get("password")) };
    if (mode === "up") await call(() => api.POST("/api/v1/auth/register", { body }));
    const pair = await call(() => api.POST("/api/v1/auth/login", { body }));
    auth.set({ access: pair.access_token, refresh: pair.refresh_token, email: body.email });
  };
  return (
    <main class="narrow">
      <h1>Reelforge</h1>
      <p class="muted">Upload, caption, analyse and stream videos.</p>
      <Form submit={submit} label={mode === "in" ? "Sign in" : "Create account"}>
        <label>Email <input name="email" type="email" required autocomplete="username" /></label>
        <label>Password <input name="password" type="password" required minLength={mode === "up" ? 8 : 1} autocomplete={mode === "in" ? "current-password" : "new-password"} /></label>
      </Form>
      <button class="link" onClick={() => setMode(mode === "in" ? "up" : "in")}>
        {mode === "in" ? "No account? Create one" : "Have an account? Sign in"}
      </button>
    </main>
  );
}
