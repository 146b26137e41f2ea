-- render: when the owner deletes the video a render was registered as, the render's own output
-- (renders/<id>/short.mp4) is deleted too; its row keeps the key it had and says when it went.

ALTER TABLE renders ADD COLUMN output_deleted_at timestamptz;
