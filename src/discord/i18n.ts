/**
 * Every sentence the bot shows people, in English and Simplified Chinese (Qwen-Image's users
 * often write Chinese prompts). Lookups fall back to English, key by key.
 */
const en = {
  // Validation (ephemeral, nothing billed)
  'size.format': '“{input}” is not a size I know. Use W*H with each side from 256 to 1536 pixels (for example `1024*1024`), or a preset: {presets}.',
  'size.range': '{width}×{height} is outside the allowed range: each side must be from 256 to 1536 pixels.',
  'prompt.empty': 'Please describe the image you want in the prompt.',
  'prompt.too_long': 'Your prompt is {length} characters long; the limit is {limit}. Please shorten it.',
  'prompt.blocked': 'This prompt contains a term that is not allowed here. Please rephrase it.',
  'permissions.missing': 'I can’t post images in this channel: I’m missing {permissions}. Ask a moderator to grant them, or use another channel.',
  'context.guild_only': 'Please use this command in a server channel.',
  // Limits
  'refusal.user_concurrent': 'You already have {limit} image(s) in progress. Please wait for one to finish.',
  'refusal.user_hourly': 'You’ve reached your limit of {limit} images per hour. You can create more {retryAt}.',
  'refusal.guild_daily': 'This server has used its {limit} images for today. More can be created {retryAt}.',
  'refusal.queue_full': 'The queue is full right now. Please try again in a few minutes.',
  'refusal.api_cooling': 'The image service is having trouble, so new requests are paused. Please try again {retryAt}.',
  // Progress
  'progress.queued': '⏳ Waiting for a free slot: you are number **{position}** in line.',
  'progress.submitting': '📨 Sending your prompt to Qwen-Image…',
  'progress.generating': '🎨 Generating your image, expected {expectedAt}.',
  'progress.late': '🐢 This one is taking longer than usual. Still working on it…',
  // Failures: one sentence per kind
  'error.auth': 'The image service rejected this bot’s API key. Please let the bot’s operator know.',
  'error.quota': 'The bot’s image credit has run out. Please let the bot’s operator know.',
  'error.invalid_request': 'The image service could not accept this request. Please try a different prompt or size.',
  'error.illegal_prompt': 'The image service refused this prompt as inappropriate. Please rephrase it.',
  'error.task_not_found': 'The image service lost track of this image. Please try again.',
  'error.rate_limited': 'The image service is busy right now. Please try again in a minute.',
  'error.server': 'The image service is having trouble right now. Please try again later.',
  'error.network': 'I could not reach the image service. Please try again later.',
  'error.timeout': 'The image took too long to generate. Please try again.',
  'error.task_failed': 'The image could not be generated{reason}. Please try again.',
  'error.too_large': 'The generated image was too large to fetch.',
  'error.aborted': 'The bot stopped before the image was ready. Please try again.',
  'error.interrupted': 'The bot restarted while sending your prompt, so the request was stopped to avoid charging twice. Please try again.',
  'error.internal': 'Something went wrong on my side. Please try again.',
  'error.upload_limit': 'The image is {size} MB, more than this server’s upload limit of {limit} MB, so I can’t post it here.',
  // Results
  'result.title': 'Qwen-Image',
  'result.size': 'Size',
  'result.time': 'Time',
  'result.requester': 'Requested by',
  'result.seconds': '{seconds} s',
  'result.withheld': '🔞 The image service flagged this result as possibly not safe for work, so it is not shown in this channel. Please try again in an age-restricted channel.',
  'button.regenerate': 'Regenerate',
  'button.delete': 'Delete',
  'button.delete_refused': 'Only the person who asked for this image, or a moderator, can delete it.',
  'button.unknown_job': 'I no longer have the details of this image, so it can’t be regenerated.',
  'late.fallback': '{user}, your image is ready:',
  'late.retired': '⬇️ The answer to this request is posted below.',
  'size.custom': 'custom',
  'preset.square': 'square',
  'preset.square-hd': 'square HD',
  'preset.landscape': 'landscape',
  'preset.portrait': 'portrait',
  'preset.wide': 'wide',
  'preset.tall': 'tall',
  'preset.photo': 'photo',
  'preset.photo-portrait': 'photo, portrait',
  // Command metadata
  'command.name': 'imagine',
  'command.prompt.name': 'prompt',
  'command.size.name': 'size',
  'command.description': 'Create an image from a text prompt with Qwen-Image',
  'command.prompt': 'What the image should show (Chinese and English text in images work well)',
  'command.size': 'Width*height from 256 to 1536, e.g. 1024*1024, or a preset',
} as const;

export type MessageKey = keyof typeof en;

const zhCN: Partial<Record<MessageKey, string>> = {
  'size.format': '“{input}” 不是可用的尺寸。请使用 宽*高，每边 256 到 1536 像素（例如 `1024*1024`），或预设：{presets}。',
  'size.range': '{width}×{height} 超出允许范围：每边须在 256 到 1536 像素之间。',
  'prompt.empty': '请在提示词中描述你想要的图片。',
  'prompt.too_long': '你的提示词有 {length} 个字符，上限为 {limit}。请缩短后重试。',
  'prompt.blocked': '该提示词包含此处不允许的词语，请修改后重试。',
  'permissions.missing': '我无法在此频道发布图片：缺少 {permissions} 权限。请联系管理员授予权限，或换一个频道。',
  'context.guild_only': '请在服务器频道中使用此命令。',
  'refusal.user_concurrent': '你已有 {limit} 张图片正在生成，请等待完成后再试。',
  'refusal.user_hourly': '你已达到每小时 {limit} 张图片的上限，{retryAt}可以继续创建。',
  'refusal.guild_daily': '本服务器今天的 {limit} 张图片额度已用完，{retryAt}可以继续创建。',
  'refusal.queue_full': '当前队列已满，请几分钟后再试。',
  'refusal.api_cooling': '图像服务出现故障，新的请求已暂停。请在{retryAt}再试。',
  'progress.queued': '⏳ 正在排队：你排在第 **{position}** 位。',
  'progress.submitting': '📨 正在把你的提示词发送给 Qwen-Image…',
  'progress.generating': '🎨 正在生成图片，预计{expectedAt}完成。',
  'progress.late': '🐢 这次比平时慢一些，仍在生成中…',
  'error.auth': '图像服务拒绝了本机器人的 API 密钥，请通知机器人管理员。',
  'error.quota': '机器人的生成额度已用完，请通知机器人管理员。',
  'error.invalid_request': '图像服务无法接受此请求，请换一个提示词或尺寸。',
  'error.illegal_prompt': '图像服务认为该提示词不当并拒绝了它，请修改后重试。',
  'error.task_not_found': '图像服务找不到这个任务了，请重试。',
  'error.rate_limited': '图像服务当前繁忙，请一分钟后再试。',
  'error.server': '图像服务暂时出现故障，请稍后再试。',
  'error.network': '无法连接到图像服务，请稍后再试。',
  'error.timeout': '图片生成超时，请重试。',
  'error.task_failed': '图片生成失败{reason}，请重试。',
  'error.too_large': '生成的图片太大，无法获取。',
  'error.aborted': '机器人在图片完成前停止了，请重试。',
  'error.interrupted': '机器人在发送提示词时重启了，为避免重复扣费，此请求已停止。请重试。',
  'error.internal': '机器人内部出错了，请重试。',
  'error.upload_limit': '图片大小为 {size} MB，超过本服务器 {limit} MB 的上传上限，无法在此发布。',
  'result.size': '尺寸',
  'result.time': '用时',
  'result.requester': '请求者',
  'result.seconds': '{seconds} 秒',
  'result.withheld': '🔞 图像服务将此结果标记为可能不适宜内容，因此不会在此频道显示。请在年龄限制频道中重试。',
  'button.regenerate': '重新生成',
  'button.delete': '删除',
  'button.delete_refused': '只有请求此图片的人或管理员可以删除它。',
  'button.unknown_job': '我已没有这张图片的详细信息，无法重新生成。',
  'late.fallback': '{user}，你的图片已完成：',
  'late.retired': '⬇️ 此请求的结果已发布在下方。',
  'size.custom': '自定义',
  'preset.square': '方形',
  'preset.square-hd': '高清方形',
  'preset.landscape': '横向',
  'preset.portrait': '纵向',
  'preset.wide': '宽屏',
  'preset.tall': '竖屏',
  'preset.photo': '照片',
  'preset.photo-portrait': '竖版照片',
  'command.name': '画图',
  'command.prompt.name': '提示词',
  'command.size.name': '尺寸',
  'command.description': '用 Qwen-Image 根据文字提示生成图片',
  'command.prompt': '图片内容的描述（图片中的中英文文字效果很好）',
  'command.size': '宽*高，每边 256 到 1536，例如 1024*1024，或选择预设',
};

const TABLES: Record<string, Partial<Record<MessageKey, string>>> = { 'zh-CN': zhCN };

export type Params = Record<string, string | number>;

/** Discord sends locales like `zh-CN`, `en-US`, `en-GB`; anything unknown reads English. */
export function t(locale: string | undefined, key: MessageKey, params: Params = {}): string {
  const template = (locale && TABLES[locale]?.[key]) || en[key];
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** Localisations for command metadata, in Discord's `{ locale: text }` shape. */
export function localizations(key: MessageKey): Record<string, string> {
  return Object.fromEntries(Object.entries(TABLES).flatMap(([locale, table]) => (table[key] ? [[locale, table[key]]] : [])));
}

export const LOCALES = ['en-US', ...Object.keys(TABLES)];
