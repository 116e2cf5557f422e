// @ts-check
// The console's words in English and Korean: the browser's language picks one (ko… → Korean), the header switches
// it, and the choice is kept in localStorage.

const EN = {
  "app.title": "talkgate console",
  "nav.overview": "Overview",
  "nav.deliveries": "Deliveries",
  "nav.audit": "Audit log",
  "header.language": "Language",
  "header.signOut": "Sign out",
  "role.admin": "admin",
  "role.viewer": "viewer",
  "signIn.title": "Sign in",
  "signIn.name": "Name",
  "signIn.password": "Password",
  "signIn.submit": "Sign in",
  "signIn.wrong": "Wrong name or password.",
  "signIn.throttled": "Too many failed tries. Try again in {wait}.",
  "signIn.ended": "Your session has ended. Please sign in again.",
  "problem.network": "talkgate did not answer ({reason}).",
  "list.all": "All",
  "list.loadMore": "Load more",
  "list.empty": "Nothing to show.",
  "overview.title": "Overview",
  "overview.updated": "Updated {time}; refreshed every 5 seconds.",
  "overview.channel": "Channel",
  "overview.webhooks": "Webhooks/min",
  "overview.relays": "Relays/min",
  "overview.backlog": "Backlog",
  "overview.lag": "Delivery lag",
  "overview.dead": "Dead letters",
  "overview.partner": "Partner",
  "overview.token": "Token",
  "overview.lastWebhook": "Last webhook",
  "overview.disabled": "disabled",
  "overview.expires": "expires {when}",
  "overview.never": "never",
  "partnerState.delivering": "delivering",
  "partnerState.paused": "paused",
  "partnerState.probing": "probing",
  "partnerState.disabled": "disabled",
  "tokenState.valid": "valid",
  "tokenState.failing": "failing",
  "tokenState.none": "none",
  "deliveries.title": "Deliveries",
  "deliveries.channel": "Channel",
  "deliveries.state": "State",
  "deliveries.received": "Received",
  "deliveries.serialNumber": "Serial number",
  "deliveries.conversation": "Conversation",
  "deliveries.event": "Event",
  "deliveries.attempts": "Attempts",
  "deliveries.lastAnswer": "Last answer",
  "deliveries.select": "Select {serialNumber}",
  "deliveries.replay": "Replay selected",
  "deliveries.replayed": "Replayed {replayed} of {selected} selected.",
  "state.pending": "pending",
  "state.retrying": "retrying",
  "state.delivered": "delivered",
  "state.dead": "dead letter",
  "audit.title": "Audit log",
  "audit.time": "Time",
  "audit.actor": "Actor",
  "audit.action": "Action",
  "audit.target": "Target",
  "audit.outcome": "Outcome",
  "audit.filter": "Filter",
};

/** @typedef {keyof typeof EN} Key */

/** @type {Record<Key, string>} */
const KO = {
  "app.title": "talkgate 콘솔",
  "nav.overview": "개요",
  "nav.deliveries": "전달",
  "nav.audit": "감사 로그",
  "header.language": "언어",
  "header.signOut": "로그아웃",
  "role.admin": "관리자",
  "role.viewer": "조회자",
  "signIn.title": "로그인",
  "signIn.name": "이름",
  "signIn.password": "비밀번호",
  "signIn.submit": "로그인",
  "signIn.wrong": "이름 또는 비밀번호가 올바르지 않습니다.",
  "signIn.throttled": "로그인 시도가 너무 많습니다. {wait} 후에 다시 시도하세요.",
  "signIn.ended": "세션이 끝났습니다. 다시 로그인하세요.",
  "problem.network": "talkgate가 응답하지 않습니다({reason}).",
  "list.all": "전체",
  "list.loadMore": "더 보기",
  "list.empty": "표시할 항목이 없습니다.",
  "overview.title": "개요",
  "overview.updated": "{time}에 갱신됨. 5초마다 새로 고칩니다.",
  "overview.channel": "채널",
  "overview.webhooks": "웹훅/분",
  "overview.relays": "전달/분",
  "overview.backlog": "대기",
  "overview.lag": "전달 지연",
  "overview.dead": "전달 실패",
  "overview.partner": "파트너",
  "overview.token": "토큰",
  "overview.lastWebhook": "최근 웹훅",
  "overview.disabled": "사용 중지",
  "overview.expires": "{when} 만료",
  "overview.never": "없음",
  "partnerState.delivering": "전달 중",
  "partnerState.paused": "일시 중지",
  "partnerState.probing": "상태 확인 중",
  "partnerState.disabled": "사용 중지",
  "tokenState.valid": "유효",
  "tokenState.failing": "발급 실패",
  "tokenState.none": "없음",
  "deliveries.title": "전달",
  "deliveries.channel": "채널",
  "deliveries.state": "상태",
  "deliveries.received": "수신 시각",
  "deliveries.serialNumber": "일련번호",
  "deliveries.conversation": "대화",
  "deliveries.event": "이벤트",
  "deliveries.attempts": "시도",
  "deliveries.lastAnswer": "최근 응답",
  "deliveries.select": "{serialNumber} 선택",
  "deliveries.replay": "선택 항목 재전송",
  "deliveries.replayed": "선택한 {selected}건 중 {replayed}건을 재전송했습니다.",
  "state.pending": "대기",
  "state.retrying": "재시도 중",
  "state.delivered": "전달됨",
  "state.dead": "전달 실패",
  "audit.title": "감사 로그",
  "audit.time": "시각",
  "audit.actor": "행위자",
  "audit.action": "작업",
  "audit.target": "대상",
  "audit.outcome": "결과",
  "audit.filter": "조회",
};

/** @typedef {"en" | "ko"} Language */

/** @type {Record<Language, Record<Key, string>>} */
const DICTIONARIES = { en: EN, ko: KO };
const STORAGE_KEY = "talkgate.language";

/** @param {unknown} value @returns {value is Language} */
export function isLanguage(value) {
  return value === "en" || value === "ko";
}

/** The primary subtag of a BCP 47 tag: "ko" of "ko-KR". @param {string} tag */
export function primaryLanguage(tag) {
  return tag.split("-")[0]?.toLowerCase() ?? "";
}

/** @returns {Language} */
function initialLanguage() {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (isLanguage(stored)) return stored;
  return primaryLanguage(navigator.language) === "ko" ? "ko" : "en";
}

let current = initialLanguage();

/** The console's language. */
export function language() {
  return current;
}

/** Switches the language (kept for the next visit) and re-labels the page's fixed elements. @param {Language} chosen */
export function setLanguage(chosen) {
  current = chosen;
  localStorage.setItem(STORAGE_KEY, chosen);
  labelPage();
}

/** Marks the page with the language and writes the text of every element with a data-i18n key. */
export function labelPage() {
  document.documentElement.lang = current;
  document.title = t("app.title");
  for (const element of document.querySelectorAll("[data-i18n]")) {
    if (element instanceof HTMLElement) element.textContent = t(/** @type {Key} */ (element.dataset.i18n));
  }
}

/**
 * The text of `key` in the console's language, its `{name}` placeholders filled from `values`.
 * @param {Key} key
 * @param {Record<string, string | number>} [values]
 */
export function t(key, values = {}) {
  return DICTIONARIES[current][key].replace(/\{(\w+)\}/g, (placeholder, name) =>
    String(values[name] ?? placeholder),
  );
}
