/** What a member sees about an image they asked for: validation, limits, progress, failures, results. */
export const en = {
  // Validation (ephemeral, nothing billed)
  'size.format':
    '“{input}” is not a size I know. Use W*H with each side from 256 to 1536 pixels (for example `1024*1024`), or a preset: {presets}.',
  'size.range': '{width}×{height} is outside the allowed range: each side must be from 256 to 1536 pixels.',
  'prompt.empty': 'Please describe the image you want in the prompt.',
  'prompt.too_long': 'Your prompt is {length} characters long; the limit is {limit}. Please shorten it.',
  'prompt.blocked': 'This prompt contains a term that is not allowed here. Please rephrase it.',
  'permissions.missing':
    'I can’t post images in this channel: I’m missing {permissions}. Ask a moderator to grant them, or use another channel.',
  'context.guild_only': 'Please use this command in a server channel.',
  // Limits
  'refusal.user_concurrent': 'You already have {limit} image(s) in progress. Please wait for one to finish.',
  'refusal.user_hourly': 'You’ve reached your limit of {limit} images per hour. You can create more {retryAt}.',
  'refusal.guild_daily': 'This server has used its {limit} images for today. More can be created {retryAt}.',
  'refusal.queue_full': 'The queue is full right now. Please try again in a few minutes.',
  'refusal.api_cooling': 'The image service is having trouble, so new requests are paused. Please try again {retryAt}.',
  'refusal.batch_user_hourly':
    'You asked for {count} images, but only {remaining} more fit in your limit of {limit} images per hour. Please ask for {remaining} or fewer.',
  'refusal.batch_guild_daily':
    'You asked for {count} images, but this server has only {remaining} left of its {limit} images for today. Please ask for {remaining} or fewer.',
  'count.too_many': 'You can ask for at most {max} image(s) at a time here. Please lower `count`.',
  'refusal.held_member':
    'You have {held} image(s) waiting for a moderator to review them, the most one member can have here. You can ask for more once a moderator has looked at them.',
  'refusal.held_guild':
    'This server has {held} images waiting for a moderator to review them, the most it can have. New requests are paused until the moderators have looked at them.',
  // One message for the images of one request
  'batch.progress': '🖼️ **{ready} of {count}** ready · {pending} still generating',
  'batch.done': '🖼️ **{ready} of {count}** images ready',
  'batch.failed': '❌ Image {index} of {count}: {reason}',
  'batch.held':
    '🔞 Image {index} of {count} was flagged as possibly not safe for work: it is not shown here and is waiting for a moderator.',
  'batch.no_reviewer':
    '🔞 Image {index} of {count} was flagged as possibly not safe for work and is not shown; this server has no review channel the bot can use yet.',
  'batch.review_all.held':
    '🔞 Image {index} of {count} is waiting for a moderator: this server has every image looked at before it is shown.',
  'batch.review_all.no_reviewer':
    '🔞 Image {index} of {count} is not shown: this server has every image looked at first, but has no review channel the bot can use yet.',
  'batch.content_warning': '⚠️ Some images may not be safe for work: they are behind a spoiler.',
  'batch.removed': '🗑️ Image {index} of {count} was removed by a moderator after a member reported it.',
  // The storage is unavailable
  'refusal.storage_unavailable':
    'The bot’s storage is unavailable right now, so new requests are paused; please try again in a minute.',
  // Progress
  'progress.queued': '⏳ Waiting for a free slot: you are number **{position}** in line.',
  'progress.queued_eta':
    '⏳ Waiting for the image service’s per-minute budget: you are number **{position}** in line, starting {startsAt}.',
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
  'error.queue_timeout':
    'Your request waited too long in the queue, so it was cancelled before anything was charged. Please try again.',
  'error.interrupted':
    'The bot restarted while sending your prompt, so the request was stopped to avoid charging twice. Please try again.',
  'error.internal': 'Something went wrong on my side. Please try again.',
  'error.upload_limit':
    'The image is {size} MB, more than this server’s upload limit of {limit} MB, so I can’t post it here.',
  'error.upload_limit_held': 'The image is larger than this server’s upload limit, so I can’t post it here.',
  // Results
  'result.title': 'Qwen-Image',
  'result.size': 'Size',
  'result.time': 'Time',
  'result.requester': 'Requested by',
  'result.seconds': '{seconds} s',
  'button.regenerate': 'More like this',
  'button.delete': 'Delete',
  'button.delete_refused': 'Only the person who asked for this image, or a moderator, can delete it.',
  'button.unknown_job': 'I no longer have the details of this image, so it can’t be regenerated.',
  'late.fallback': '{user}, your image is ready:',
  'late.update': '{user}, an update on your image request:',
  'late.retired': '⬇️ The answer to this request is posted below.',
  // Moderation: what requesters see
  'result.content_warning':
    'Content warning: the image service flagged this image as possibly not safe for work. Click the image to reveal it.',
  'notice.awaiting_review':
    '🔞 This result was flagged as possibly not safe for work, so it is not shown here. A moderator will review it; if they approve it, it appears here.',
  'notice.review_all.awaiting_review':
    '🔞 This server has a moderator look at every image before it is shown. A moderator will review it; if they approve it, it appears here.',
  'notice.no_reviewer':
    '🔞 This result was flagged as possibly not safe for work, so it is not shown. This server has no review channel the bot can use, so no moderator can review it yet (a server manager can set one with `/imagine-settings review-channel`).',
  'notice.review_all.no_reviewer':
    '🔞 This server has a moderator look at every image before it is shown, but it has no review channel the bot can use, so no moderator can review it yet (a server manager can set one with `/imagine-settings review-channel`).',
  'notice.rejected': '🚫 A moderator reviewed this image and decided not to publish it.',
  'notice.removed': 'A moderator removed this image after a member reported it.',
  'button.report': 'Report',
} as const;

export const zhCN: Partial<Record<keyof typeof en, string>> = {
  'size.format':
    '“{input}” 不是可用的尺寸。请使用 宽*高，每边 256 到 1536 像素（例如 `1024*1024`），或预设：{presets}。',
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
  // Several images asked for at once
  'refusal.batch_user_hourly':
    '你请求了 {count} 张图片，但你每小时 {limit} 张的上限只剩 {remaining} 张。请把数量减少到 {remaining} 张或更少。',
  'refusal.batch_guild_daily':
    '你请求了 {count} 张图片，但本服务器今天 {limit} 张的额度只剩 {remaining} 张。请把数量减少到 {remaining} 张或更少。',
  'count.too_many': '这里每次最多可以请求 {max} 张图片，请减少 `count`。',
  'refusal.held_member': '你有 {held} 张图片正在等待管理员审核，已达到每位成员的上限。管理员处理后即可继续创建。',
  'refusal.held_guild': '本服务器有 {held} 张图片正在等待管理员审核，已达到上限。在管理员处理之前，新的请求已暂停。',
  'batch.progress': '🖼️ 已完成 **{ready}/{count}** 张 · 还有 {pending} 张正在生成',
  'batch.done': '🖼️ 已完成 **{ready}/{count}** 张图片',
  'batch.failed': '❌ 第 {index}/{count} 张：{reason}',
  'batch.held': '🔞 第 {index}/{count} 张被标记为可能不适宜内容，不在此显示，正在等待管理员审核。',
  'batch.no_reviewer': '🔞 第 {index}/{count} 张被标记为可能不适宜内容，不予显示；本服务器还没有机器人可用的审核频道。',
  'batch.review_all.held': '🔞 第 {index}/{count} 张正在等待管理员审核：本服务器的每张图片在显示前都由管理员查看。',
  'batch.review_all.no_reviewer':
    '🔞 第 {index}/{count} 张不予显示：本服务器的每张图片都需先经审核，但还没有机器人可用的审核频道。',
  'batch.content_warning': '⚠️ 部分图片可能不适宜公开浏览，已用剧透遮挡。',
  'batch.removed': '🗑️ 第 {index}/{count} 张在成员举报后已被管理员移除。',
  'refusal.storage_unavailable': '机器人的存储暂时不可用，新的请求已暂停，请一分钟后再试。',
  'progress.queued': '⏳ 正在排队：你排在第 **{position}** 位。',
  'progress.queued_eta': '⏳ 正在等待图像服务的每分钟额度：你排在第 **{position}** 位，预计{startsAt}开始。',
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
  'error.queue_timeout': '你的请求排队时间过长，已在扣费前取消。请重试。',
  'error.interrupted': '机器人在发送提示词时重启了，为避免重复扣费，此请求已停止。请重试。',
  'error.internal': '机器人内部出错了，请重试。',
  'error.upload_limit': '图片大小为 {size} MB，超过本服务器 {limit} MB 的上传上限，无法在此发布。',
  'error.upload_limit_held': '图片超过本服务器的上传上限，无法在此发布。',
  'result.size': '尺寸',
  'result.time': '用时',
  'result.requester': '请求者',
  'result.seconds': '{seconds} 秒',
  'button.regenerate': '更多类似',
  'button.delete': '删除',
  'button.delete_refused': '只有请求此图片的人或管理员可以删除它。',
  'button.unknown_job': '我已没有这张图片的详细信息，无法重新生成。',
  'late.fallback': '{user}，你的图片已完成：',
  'late.update': '{user}，你的图片请求有新消息：',
  'late.retired': '⬇️ 此请求的结果已发布在下方。',
  'result.content_warning': '内容提醒：图像服务将此图片标记为可能不适宜内容。点击图片即可查看。',
  'notice.awaiting_review':
    '🔞 此结果被标记为可能不适宜内容，因此不在此显示。管理员将进行审核；如果获准，图片会显示在这里。',
  'notice.review_all.awaiting_review':
    '🔞 本服务器的每张图片在显示前都由管理员查看。管理员将进行审核；如果获准，图片会显示在这里。',
  'notice.no_reviewer':
    '🔞 此结果被标记为可能不适宜内容，因此不予显示。本服务器还没有机器人可用的审核频道，暂时无法由管理员审核（服务器管理者可用 `/imagine-settings review-channel` 设置）。',
  'notice.review_all.no_reviewer':
    '🔞 本服务器的每张图片在显示前都由管理员查看，但还没有机器人可用的审核频道，暂时无法审核（服务器管理者可用 `/imagine-settings review-channel` 设置）。',
  'notice.rejected': '🚫 管理员审核了这张图片，决定不予发布。',
  'notice.removed': '有成员举报后，管理员移除了这张图片。',
  'button.report': '举报',
};
