import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, auth } from "./api/client";
import { useRoute } from "./ui";
import { SignIn } from "./pages/SignIn";
import { Library } from "./pages/Library";
import { Video } from "./pages/Video";
import { Add } from "./pages/Add";
import { Jobs } from "./pages/Jobs";
import { Credits } from "./pages/Credits";
import { Developers, Reference } from "./pages/Developers";
import { Rankings } from "./pages/Rankings";
import { Batches } from "./pages/Batches";
import "./app.css";

const PAGES = { library: "Library", add: "Add", jobs: "Jobs", rankings: "Ranking shorts", batches: "Batches", credits: "Credits", developers: "Developers" };

function Page({ route }: { route: string[] }) {
  const [page = "library", id = ""] = route;
  switch (page) {
    case "video": return <Video id={id} />;
    case "add": return <Add />;
    case "jobs": return <Jobs />;
    case "credits": return <Credits />;
    case "developers": return <Developers />;
    case "reference": return <Reference />;
    case "rankings": return <Rankings id={id} rest={route.slice(2)} />;
    case "batches": return <Batches id={id} />;
    default: return <Library />;
  }
}

function App() {
  const [session, setSession] = useState(auth.get());
  useEffect(() => auth.subscribe(() => setSession(auth.get())), []);
  const route = useRoute();
  if (!session) return <SignIn />;
  const signOut = async () => {
    await api.POST("/api/v1/auth/logout", { body: { refresh_token: session.refresh } }).catch(() => null);
    auth.set(null);
  };
  return (
    <>
      <header>
        <a class="brand" href="#/library">Reelforge</a>
        <nav>
          {Object.entries(PAGES).map(([k, label]) => (
            <a href={`#/${k}`} aria-current={(route[0] || "library") === k ? "page" : undefined}>{label}</a>
          ))}
        </nav>
        <span class="who">{session.email} <button class="link" onClick={signOut}>Sign out</button></span>
      </header>
      <main><Page route={route} /></main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
