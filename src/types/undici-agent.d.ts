// Types for undici's Agent module imported on its own: the package declares its index only.
declare module "undici/lib/dispatcher/agent.js" {
  export { Agent as default } from "undici";
}
